package sample

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// hypothesis is a beam: generated tokens with their log-probabilities.
type hypothesis struct {
	ids    []int
	lps    []float64
	sum    float64
	cache  *model.Cache // live beams only
	logits []float32    // live beams only: the model's output after ids
	parent int          // index of the beam it extends, while choosing
	text   string       // finished ones only
	finish string       // finished ones only
}

// mean is the hypothesis's length-normalised score.
func (h *hypothesis) mean() float64 { return h.sum / float64(len(h.ids)) }

// byMean orders finished hypotheses best first; ties keep their order of
// arrival (callers use a stable sort).
func byMean(a, b *hypothesis) int { return cmp.Compare(b.mean(), a.mean()) }

// beamSearch is Generate with opts.Beams > 1; opts is valid.
func beamSearch(ctx context.Context, m *model.Model, tok *tokenizer.Tokenizer, prompt []int, opts Options, emit func(int, string) error) ([]Result, error) {
	cfg := m.Config
	vocab := min(tok.VocabSize(), cfg.VocabSize)
	beams, n := opts.Beams, max(opts.N, 1)
	p, err := preparePrompt(cfg, prompt, opts)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cache := m.NewCache()
	out, err := m.Forward([]model.Step{{Cache: cache, Tokens: p}})
	if err != nil {
		return nil, fmt.Errorf("beam search: %w", err)
	}
	live := []*hypothesis{{cache: cache, logits: out[0]}}
	var finished []*hypothesis
	var free []*model.Cache

	type candidate struct {
		parent, id int
		lp, score  float64
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Each beam's 2*beams best continuations are enough: at most beams
		// of the best candidates end in <|endoftext|>.
		var cands []candidate
		for bi, h := range live {
			lp := LogSoftmax(h.logits)
			for _, t := range TopK(lp[:vocab], 2*beams) {
				cands = append(cands, candidate{bi, t.ID, t.Logprob, h.sum + t.Logprob})
			}
		}
		slices.SortFunc(cands, func(a, b candidate) int {
			return cmp.Or(cmp.Compare(b.score, a.score), cmp.Compare(a.parent, b.parent), cmp.Compare(a.id, b.id))
		})

		var next []*hypothesis
		slots := 0 // candidates taken that did not end in <|endoftext|>
		for r, c := range cands {
			if slots == beams {
				break
			}
			parent := live[c.parent]
			h := &hypothesis{
				ids:    append(slices.Clip(parent.ids), c.id),
				lps:    append(slices.Clip(parent.lps), c.lp),
				sum:    c.score,
				parent: c.parent,
			}
			if c.id == tokenizer.EndOfText {
				if r < beams {
					h.text, _ = decodeUntilStop(tok, h.ids[:len(h.ids)-1], opts.Stop)
					h.finish = FinishStop
					finished = append(finished, h)
				}
				continue
			}
			slots++
			text, stopped := decodeUntilStop(tok, h.ids, opts.Stop)
			switch {
			case stopped:
				h.finish = FinishStop
			case opts.MaxTokens > 0 && len(h.ids) >= opts.MaxTokens,
				len(p)+len(h.ids)-1 >= cfg.NCtx: // no room to feed the new token
				h.finish = FinishLength
			default:
				next = append(next, h)
				continue
			}
			h.text = text
			finished = append(finished, h)
		}

		if len(next) == 0 {
			break
		}
		if len(finished) >= beams {
			slices.SortStableFunc(finished, byMean)
			bestLive := slices.MaxFunc(next, func(a, b *hypothesis) int { return cmp.Compare(a.mean(), b.mean()) })
			if bestLive.mean() < finished[beams-1].mean() {
				break
			}
		}

		// Give each new beam a cache: the first child of a beam takes over
		// its cache, later children get copies, in caches freed by beams
		// that have no children. Nothing is written before the copies are
		// made, so the order does not matter.
		children := make([]int, len(live))
		for _, h := range next {
			children[h.parent]++
		}
		for i, h := range live {
			if children[i] == 0 {
				free = append(free, h.cache)
			}
		}
		taken := make([]bool, len(live))
		for _, h := range next {
			if !taken[h.parent] {
				taken[h.parent] = true
				h.cache = live[h.parent].cache
				continue
			}
			if k := len(free); k > 0 {
				h.cache, free = free[k-1], free[:k-1]
			} else {
				h.cache = m.NewCache()
			}
			h.cache.CopyFrom(live[h.parent].cache)
		}

		steps := make([]model.Step, len(next))
		for i, h := range next {
			steps[i] = model.Step{Cache: h.cache, Tokens: h.ids[len(h.ids)-1:]}
		}
		out, err := m.Forward(steps)
		if err != nil {
			return nil, fmt.Errorf("beam search: %w", err)
		}
		for i, h := range next {
			h.logits = out[i]
		}
		live = next
	}

	slices.SortStableFunc(finished, byMean)
	results := make([]Result, min(n, len(finished)))
	for i := range results {
		h := finished[i]
		results[i] = Result{Prompt: slices.Clone(p), Ids: h.ids, Text: h.text, FinishReason: h.finish, Logprobs: h.lps}
		if emit != nil && h.text != "" {
			if err := emit(i, h.text); err != nil {
				return nil, err
			}
		}
	}
	return results, nil
}

// decodeUntilStop decodes ids and cuts the text at the first stop string,
// reporting whether there was one.
func decodeUntilStop(tok *tokenizer.Tokenizer, ids []int, stop []string) (string, bool) {
	var b strings.Builder
	for _, id := range ids {
		t, err := tok.TokenBytes(id)
		if err == nil { // an id the vocabulary skips has no text
			b.Write(t)
		}
	}
	text := b.String()
	at := -1
	for _, st := range stop {
		if i := strings.Index(text, st); i >= 0 && (at < 0 || i < at) {
			at = i
		}
	}
	if at < 0 {
		return text, false
	}
	return text[:at], true
}
