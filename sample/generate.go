package sample

import (
	"context"
	"fmt"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Generate continues prompt with model m and returns opts.N samples (one
// by default), in order. emit, if not nil, receives each sample's text as
// it is generated (i is the sample's index; the pieces of sample i
// concatenate to its Text); an error from emit stops generation and is
// returned. Generation also stops when ctx is done.
//
// The samples go through the model together, one forward pass per token,
// after the prompt has been fed once and its cache copied. Sample i draws
// its tokens with the seed opts.Seed+i from its own generator, so a run is
// reproducible, and sample i is the same whatever N is.
//
// A prompt longer than the model's context is an error (wrapping
// model.ErrContext) unless opts.KeepLast; a sample that fills the context
// ends with "length".
//
// With opts.Beams > 1, Generate runs beam search instead: deterministic,
// ignoring the sampling parameters (temperature, top-k, top-p, penalties,
// bias, seed). It keeps the Beams partial sequences of highest total
// log-probability (all live ones have the same length, so the total and
// the mean rank them alike); a hypothesis is finished by <|endoftext|>, a
// stop string, MaxTokens or the context. Finished hypotheses are ranked by
// their mean log-probability per generated token, so that short ones are
// not favoured just for having fewer terms, and the search ends once Beams
// of them are finished and no live one has a better mean. The best N are
// returned; emit receives each one's text when the search is over.
func Generate(ctx context.Context, m *model.Model, tok *tokenizer.Tokenizer, prompt []int, opts Options, emit func(i int, text string) error) ([]Result, error) {
	vocab := min(tok.VocabSize(), m.Config.VocabSize)
	if err := opts.validate(vocab); err != nil {
		return nil, err
	}
	if opts.Beams > 1 {
		return beamSearch(ctx, m, tok, prompt, opts, emit)
	}
	if emit == nil {
		emit = func(int, string) error { return nil }
	}
	seqs := make([]*Sequence, max(opts.N, 1))
	for i := range seqs {
		o := opts
		o.Seed = opts.Seed + uint64(i)
		s, err := NewSequence(m, tok, nil, prompt, o)
		if err != nil {
			return nil, err
		}
		seqs[i] = s
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// Feed the prompt once and share its keys and values.
	logits, err := m.Forward([]model.Step{seqs[0].Step()})
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	for i, s := range seqs {
		if i > 0 {
			s.cache.CopyFrom(seqs[0].cache)
		}
		if _, text, _ := s.Accept(logits[0]); text != "" {
			if err := emit(i, text); err != nil {
				return nil, err
			}
		}
	}

	steps := make([]model.Step, 0, len(seqs))
	live := make([]int, 0, len(seqs))
	// One logits buffer for every step (a row per live sequence): each
	// step's logits are used before the next step.
	buf := make([]float32, len(seqs)*m.Config.VocabSize)
	for {
		steps, live = steps[:0], live[:0]
		for i, s := range seqs {
			if !s.Done() {
				steps = append(steps, s.Step())
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		logits, err := m.ForwardInto(buf, steps)
		if err != nil {
			return nil, fmt.Errorf("generate: %w", err)
		}
		for j, i := range live {
			if _, text, _ := seqs[i].Accept(logits[j]); text != "" {
				if err := emit(i, text); err != nil {
					return nil, err
				}
			}
		}
	}

	results := make([]Result, len(seqs))
	for i, s := range seqs {
		results[i] = s.Result()
	}
	return results, nil
}
