package sample

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Options configure a generation: the sampling parameters plus when to stop.
type Options struct {
	Params
	// MaxTokens caps the tokens generated per sample; 0 means until the
	// model's context is full.
	MaxTokens int
	// Stop ends a sample at the first occurrence of any of these strings in
	// its generated text (matched on the decoded text, so a stop string may
	// span several tokens). The text returned ends just before it.
	Stop []string
	// KeepLast accepts a prompt longer than the model's context by keeping
	// only its last tokens: n_ctx+1-MaxTokens of them, so that all MaxTokens
	// tokens fit (at least 1), or n_ctx/2 when MaxTokens is 0. Without it
	// such a prompt is an error.
	KeepLast bool
	// SkipLogprobs leaves Result.Logprobs (and Sequence.Logprobs) empty,
	// for callers that do not use them: scoring each token takes a pass
	// over all the logits, more than drawing it with top-k does.
	SkipLogprobs bool

	// N is the number of samples to draw for the prompt (0 means 1); they
	// go through the model together. Sample i uses the seed Seed+i, so each
	// sample is the same as if it were drawn alone with that seed. With
	// beam search, N is the number of best hypotheses returned (at most
	// Beams). Used by Generate only.
	N int
	// Beams > 1 selects beam search; see Generate. Used by Generate only.
	Beams int
}

// validate checks o for a vocabulary of vocab tokens.
func (o Options) validate(vocab int) error {
	if err := o.Params.Validate(vocab); err != nil {
		return err
	}
	switch {
	case o.MaxTokens < 0:
		return fmt.Errorf("max tokens must be >= 0 (got %d)", o.MaxTokens)
	case o.N < 0:
		return fmt.Errorf("number of samples must be >= 1 (got %d)", o.N)
	case o.Beams < 0:
		return fmt.Errorf("number of beams must be >= 1 (got %d)", o.Beams)
	case o.Beams > 1 && o.N > o.Beams:
		return fmt.Errorf("cannot return %d samples from %d beams", o.N, o.Beams)
	}
	for i, s := range o.Stop {
		if s == "" {
			return fmt.Errorf("stop string %d is empty", i+1)
		}
	}
	return nil
}

// Result is one finished sample.
type Result struct {
	// Prompt is the ids the model was given: the prompt, its end only with
	// KeepLast, or [<|endoftext|>] for an empty prompt.
	Prompt []int
	// Ids are the generated tokens, including the <|endoftext|> or the
	// token that completed a stop string, when one ended the sample.
	Ids []int
	// Text is the generated text, without <|endoftext|> and without the
	// stop string and whatever followed it.
	Text string
	// FinishReason is "stop" (<|endoftext|> or a stop string) or "length"
	// (MaxTokens reached or the context full).
	FinishReason string
	// Logprobs holds, for each of Ids, its log-probability under the
	// model's own distribution: the log-softmax of the raw logits, before
	// bias, penalties, temperature and truncation. It is nil with
	// SkipLogprobs.
	Logprobs []float64
}

// Finish reasons.
const (
	FinishStop   = "stop"
	FinishLength = "length"
)

// A Sequence is one sample being generated, stepped one token at a time by
// whoever owns the model, so that many sequences can share each forward
// pass. Each step is:
//
//	steps := []model.Step{seq.Step(), ...}   // or {Cache: seq.Cache(), Tokens: seq.NextInput()}
//	logits, err := m.Forward(steps)          // last-position logits only (Step.All false)
//	tok, text, done := seq.Accept(logits[i]) // draw a token; text is what can now be shown
//
// The first step feeds the whole prompt; each later one feeds the token the
// previous step drew. A driver may also feed NextInput in several chunks
// (prefilling a long prompt over several steps), calling Accept only once
// the cache holds all of it. If the cache is emptied (Reset, or Truncate
// to evict), NextInput returns everything the cache lost, so the sequence
// can be recomputed and resumed.
//
// A Sequence is not safe for concurrent use; distinct sequences are
// independent, and the tokens each draws do not depend on which others
// share its forward passes.
type Sequence struct {
	cache    *model.Cache
	sampler  *Sampler
	dec      *tokenizer.StreamDecoder
	nctx     int
	ids      []int // the prompt, then the generated tokens
	nPrompt  int
	logprobs []float64 // nil with SkipLogprobs
	scored   bool      // whether to fill logprobs

	maxTokens int
	stop      []string
	maxStop   int

	text    []byte // generated text decoded so far
	emitted int    // bytes of text returned by Accept; the rest is held back
	done    bool
	finish  string
}

// NewSequence prepares a sample of model m continuing prompt, with the
// tokenizer's vocabulary. cache holds the sequence's keys and values: pass
// nil to allocate one, or a cache of m's to reuse (it is reset). An empty
// prompt becomes [<|endoftext|>], the document boundary, as in OpenAI's
// unconditional samples. opts.N and opts.Beams are ignored: a Sequence is
// one sample.
func NewSequence(m *model.Model, tok *tokenizer.Tokenizer, cache *model.Cache, prompt []int, opts Options) (*Sequence, error) {
	cfg := m.Config
	vocab := min(tok.VocabSize(), cfg.VocabSize)
	opts.N, opts.Beams = 0, 0
	if err := opts.validate(vocab); err != nil {
		return nil, err
	}
	p, err := preparePrompt(cfg, prompt, opts)
	if err != nil {
		return nil, err
	}
	if cache == nil {
		cache = m.NewCache()
	} else {
		if !m.Fits(cache) {
			return nil, fmt.Errorf("sample: the cache given does not fit the model")
		}
		cache.Reset()
	}
	smp, err := NewSampler(opts.Params, vocab)
	if err != nil {
		return nil, err
	}
	smp.ObserveContext(p...)
	s := &Sequence{
		cache:     cache,
		sampler:   smp,
		dec:       tok.NewStreamDecoder(),
		nctx:      cfg.NCtx,
		ids:       p,
		nPrompt:   len(p),
		scored:    !opts.SkipLogprobs,
		maxTokens: opts.MaxTokens,
		stop:      slices.Clone(opts.Stop),
	}
	for _, st := range s.stop {
		s.maxStop = max(s.maxStop, len(st))
	}
	return s, nil
}

// preparePrompt checks prompt against the model and returns the ids to
// feed it: a copy, cut to its end with KeepLast, or [<|endoftext|>] when
// empty.
func preparePrompt(cfg model.Config, prompt []int, opts Options) ([]int, error) {
	if len(prompt) == 0 {
		if tokenizer.EndOfText >= cfg.VocabSize {
			return nil, fmt.Errorf("empty prompt, and the model has no <|endoftext|> token to start from")
		}
		return []int{tokenizer.EndOfText}, nil
	}
	for i, id := range prompt {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("prompt token %d is %d, outside the model's vocabulary of %d: %w",
				i, id, cfg.VocabSize, model.ErrToken)
		}
	}
	if len(prompt) > cfg.NCtx {
		if !opts.KeepLast {
			return nil, fmt.Errorf("prompt is %d tokens, longer than the model's context of %d tokens: %w",
				len(prompt), cfg.NCtx, model.ErrContext)
		}
		keep := cfg.NCtx / 2
		if opts.MaxTokens > 0 {
			keep = cfg.NCtx + 1 - opts.MaxTokens
		}
		keep = min(max(keep, 1), cfg.NCtx)
		prompt = prompt[len(prompt)-keep:]
	}
	return slices.Clone(prompt), nil
}

// Cache returns the sequence's key/value cache.
func (s *Sequence) Cache() *model.Cache { return s.cache }

// NextInput returns the tokens to feed the model next: those of the prompt
// and of the generated tokens that the cache does not hold yet. That is the
// whole prompt at first, then the token Accept last drew. It returns nil
// once the sequence is done. The slice must not be modified, and is valid
// until the next call to Accept.
func (s *Sequence) NextInput() []int {
	if s.done || s.cache.Len >= len(s.ids) {
		return nil
	}
	return slices.Clip(s.ids[s.cache.Len:])
}

// Step returns the sequence's part of the next forward pass.
func (s *Sequence) Step() model.Step {
	return model.Step{Cache: s.cache, Tokens: s.NextInput()}
}

// Accept draws the next token from logits, the model's output for the
// sequence's last position once the cache holds every token of NextInput
// (at least the vocabulary's worth; they are not modified). It returns the
// token, the text that can now be shown, and whether the sequence is done.
//
// The text is the new token's, except that bytes of an incomplete UTF-8
// character, and a tail that could be the start of a stop string, are held
// back until the following tokens settle them. Concatenated, the texts
// returned make up Text. The sequence ends with "stop" on <|endoftext|>
// (which adds no text) or on a stop string (the text ends just before it),
// and with "length" when MaxTokens tokens have been generated or the
// context has no room to feed the new token.
//
// Calling Accept on a finished sequence, or before the cache holds
// NextInput, is a bug in the caller and panics.
func (s *Sequence) Accept(logits []float32) (tok int, text string, done bool) {
	if s.done {
		panic("sample: Accept called on a finished sequence")
	}
	if s.cache.Len != len(s.ids) {
		panic(fmt.Sprintf("sample: Accept called with %d of the sequence's %d tokens in the cache", s.cache.Len, len(s.ids)))
	}
	tok = s.sampler.Sample(logits)
	s.sampler.Observe(tok)
	s.ids = append(s.ids, tok)
	if s.scored {
		s.logprobs = append(s.logprobs, Logprob(logits, tok))
	}

	if tok == tokenizer.EndOfText {
		return tok, s.end(FinishStop), true
	}
	piece, err := s.dec.Add(tok)
	if err != nil {
		piece = "" // an id the vocabulary skips has no text
	}
	text = s.push(piece)
	switch {
	case s.done: // a stop string
	case s.maxTokens > 0 && len(s.ids)-s.nPrompt >= s.maxTokens:
		text += s.end(FinishLength)
	case len(s.ids)-1 >= s.nctx: // tok cannot be fed: the context is full
		text += s.end(FinishLength)
	}
	return tok, text, s.done
}

// push appends decoded text, ends the sequence if it completes a stop
// string, and returns the text that can be shown now.
func (s *Sequence) push(piece string) string {
	s.text = append(s.text, piece...)
	pending := string(s.text[s.emitted:])
	if len(s.stop) == 0 {
		s.emitted = len(s.text)
		return pending
	}
	at := -1
	for _, st := range s.stop {
		if i := strings.Index(pending, st); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at >= 0 {
		s.text = s.text[:s.emitted+at]
		s.emitted = len(s.text)
		s.done, s.finish = true, FinishStop
		return pending[:at]
	}
	// Hold back the longest tail that could begin a stop string. Any
	// shorter such tail lies inside it, so a match can only start in the
	// text held back.
	hold := 0
	for n := min(len(pending), s.maxStop-1); n > 0 && hold == 0; n-- {
		for _, st := range s.stop {
			if strings.HasPrefix(st, pending[len(pending)-n:]) {
				hold = n
				break
			}
		}
	}
	out := pending[:len(pending)-hold]
	s.emitted += len(out)
	return out
}

// end finishes the sequence and returns the text still held back.
func (s *Sequence) end(reason string) string {
	text := s.push(s.dec.Flush())
	if s.done {
		return text
	}
	text += string(s.text[s.emitted:])
	s.emitted = len(s.text)
	s.done, s.finish = true, reason
	return text
}

// Done reports whether the sequence has finished.
func (s *Sequence) Done() bool { return s.done }

// FinishReason is "stop" or "length" once the sequence is done, else "".
func (s *Sequence) FinishReason() string { return s.finish }

// Prompt returns the ids the model is given before generating (see
// Result.Prompt). The slice must not be modified.
func (s *Sequence) Prompt() []int { return s.ids[:s.nPrompt:s.nPrompt] }

// Generated returns the tokens drawn so far. The slice must not be
// modified.
func (s *Sequence) Generated() []int { return slices.Clip(s.ids[s.nPrompt:]) }

// Logprobs returns the log-probability of each generated token under the
// model's own distribution (see Result.Logprobs), or nil with
// SkipLogprobs. The slice must not be modified.
func (s *Sequence) Logprobs() []float64 { return slices.Clip(s.logprobs) }

// Text returns the generated text returned by Accept so far.
func (s *Sequence) Text() string { return string(s.text[:s.emitted]) }

// Result returns a copy of the sequence's outcome so far.
func (s *Sequence) Result() Result {
	return Result{
		Prompt:       slices.Clone(s.Prompt()),
		Ids:          slices.Clone(s.Generated()),
		Text:         s.Text(),
		FinishReason: s.finish,
		Logprobs:     slices.Clone(s.logprobs),
	}
}
