// Package sample turns a model's logits into text: token samplers with the
// usual controls (temperature, top-k, top-p, penalties, logit bias), the
// per-sequence state a server steps one token at a time ([Sequence]), and a
// one-call [Generate] for programs that just want completions, including
// beam search.
package sample

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
)

// Params control how each token is drawn from the model's logits. The zero
// value is greedy decoding with no penalties.
//
// The logits are transformed in this order: logit bias, repetition penalty,
// presence and frequency penalties, temperature, top-k, top-p; then a token
// is drawn from what is left (or the most likely one taken, when the
// temperature is 0).
type Params struct {
	// Temperature divides the logits before the draw: below 1 sharpens the
	// distribution, above 1 flattens it. 0 takes the most likely token
	// (greedy decoding; ties go to the lowest id).
	Temperature float64
	// TopK keeps only the TopK most likely tokens. 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// add up to at least TopP (nucleus sampling). 0 and 1 keep all.
	TopP float64
	// RepetitionPenalty makes every token already in the context, prompt
	// included, less likely, as in CTRL (Keskar et al., 2019): its logit is
	// divided by the penalty when positive and multiplied by it when
	// negative. 0 and 1 are off.
	RepetitionPenalty float64
	// PresencePenalty and FrequencyPenalty follow OpenAI's definition: each
	// token generated so far (the prompt does not count) has its logit
	// lowered by PresencePenalty once plus FrequencyPenalty times the number
	// of times it was generated. Negative values encourage repetition.
	PresencePenalty, FrequencyPenalty float64
	// LogitBias is added to the logits of the given token ids, as in
	// OpenAI's logit_bias; -100 in effect bans a token, +100 forces it.
	LogitBias map[int]float32
	// Seed seeds the sampler's random number generator, so a run is
	// reproducible. Greedy decoding draws no random numbers.
	Seed uint64
}

// Validate reports the first parameter that is out of range, for a
// vocabulary of vocab tokens.
func (p Params) Validate(vocab int) error {
	switch {
	case !(p.Temperature >= 0) || math.IsInf(p.Temperature, 1):
		return fmt.Errorf("temperature must be a finite number >= 0 (got %g)", p.Temperature)
	case p.TopK < 0:
		return fmt.Errorf("top_k must be >= 0 (got %d)", p.TopK)
	case !(p.TopP >= 0 && p.TopP <= 1):
		return fmt.Errorf("top_p must be in (0, 1] (got %g; 0 also means off)", p.TopP)
	case !(p.RepetitionPenalty >= 0) || math.IsInf(p.RepetitionPenalty, 1):
		return fmt.Errorf("repetition penalty must be a finite number > 0 (got %g; 1 or 0 means off)", p.RepetitionPenalty)
	case !finite(p.PresencePenalty):
		return fmt.Errorf("presence penalty must be finite (got %g)", p.PresencePenalty)
	case !finite(p.FrequencyPenalty):
		return fmt.Errorf("frequency penalty must be finite (got %g)", p.FrequencyPenalty)
	}
	for _, id := range slices.Sorted(maps.Keys(p.LogitBias)) {
		if id < 0 || id >= vocab {
			return fmt.Errorf("logit bias for token %d: outside the vocabulary of %d tokens", id, vocab)
		}
		if b := float64(p.LogitBias[id]); !finite(b) {
			return fmt.Errorf("logit bias for token %d must be finite (got %g)", id, b)
		}
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// pcgStream is the second PCG seed word. It is fixed so that Params.Seed
// alone determines the random numbers.
const pcgStream = 0x9e3779b97f4a7c15

// A Sampler draws tokens for one sequence. It owns its random number
// generator, so the tokens it draws depend only on its seed and the logits
// it is given, never on what other sequences are doing. It is not safe for
// concurrent use.
type Sampler struct {
	p     Params
	vocab int
	rng   *rand.Rand

	inContext map[int]bool // tokens seen, prompt included (repetition penalty)
	counts    map[int]int  // generated tokens (presence and frequency penalties)

	z   []float64 // scratch: adjusted logits, then weights
	idx []int     // scratch: candidate ids
}

// NewSampler returns a sampler for a vocabulary of vocab tokens. Only the
// first vocab logits passed to Sample are considered, so a model whose
// embedding is padded past its tokenizer's vocabulary never yields an id
// the tokenizer cannot decode.
func NewSampler(p Params, vocab int) (*Sampler, error) {
	if vocab <= 0 {
		return nil, fmt.Errorf("sampler: vocabulary size must be positive (got %d)", vocab)
	}
	if err := p.Validate(vocab); err != nil {
		return nil, err
	}
	return &Sampler{
		p:         p,
		vocab:     vocab,
		rng:       rand.New(rand.NewPCG(p.Seed, pcgStream)),
		inContext: map[int]bool{},
		counts:    map[int]int{},
	}, nil
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

// ObserveContext records prompt tokens, which the repetition penalty counts
// but the presence and frequency penalties do not.
func (s *Sampler) ObserveContext(ids ...int) {
	for _, id := range ids {
		s.inContext[id] = true
	}
}

// Observe records a generated token, for the penalties.
func (s *Sampler) Observe(id int) {
	s.inContext[id] = true
	s.counts[id]++
}

// Sample draws the next token from logits (at least vocab of them). It does
// not modify logits, and given the same seed, observations and logits it
// always returns the same token. NaN logits count as -Inf.
func (s *Sampler) Sample(logits []float32) int {
	z := s.adjust(logits)
	if s.p.Temperature == 0 {
		return argmax(z)
	}
	top := argmax(z)
	hi := z[top]
	inv := 1 / s.p.Temperature
	if math.IsInf(hi, 0) || math.IsInf(inv, 0) {
		// All banned, an infinite logit, or a temperature so small it
		// is greedy: the weights below would be NaN.
		return top
	}
	// Weights proportional to the tempered probabilities (the largest is
	// 1), computed only for the tokens that can still be drawn: exp is most
	// of the cost.
	k := s.p.TopK
	nucleus := s.p.TopP > 0 && s.p.TopP < 1
	if (k == 0 || k >= s.vocab) && !nucleus {
		for i, v := range z {
			z[i] = math.Exp((v - hi) * inv)
		}
		return s.draw(z, nil)
	}

	idx := s.idx[:0]
	for i := range z {
		idx = append(idx, i)
	}
	s.idx = idx
	if k > 0 && k < len(idx) {
		// Tempering preserves the order, so select on the logits.
		selectTop(idx, z, k)
		idx = idx[:k]
	}
	for _, i := range idx {
		z[i] = math.Exp((z[i] - hi) * inv)
	}
	if nucleus {
		var total float64
		for _, i := range idx {
			total += z[i]
		}
		idx = idx[:selectNucleus(idx, z, s.p.TopP*total)]
	}
	// The selections leave idx in an order that depends only on the
	// weights, so the draw below is deterministic without sorting.
	return s.draw(z, idx)
}

// adjust copies logits into the scratch buffer as float64 and applies the
// logit bias and the penalties.
func (s *Sampler) adjust(logits []float32) []float64 {
	if len(logits) < s.vocab {
		panic(fmt.Sprintf("sample: %d logits for a vocabulary of %d", len(logits), s.vocab))
	}
	if s.z == nil {
		s.z = make([]float64, s.vocab)
	}
	z := s.z
	for i, v := range logits[:s.vocab] {
		z[i] = float64(v)
		if z[i] != z[i] {
			z[i] = math.Inf(-1)
		}
	}
	for id, b := range s.p.LogitBias {
		z[id] += float64(b)
	}
	if r := s.p.RepetitionPenalty; r != 0 && r != 1 {
		for id := range s.inContext {
			if id < 0 || id >= s.vocab {
				continue
			}
			if z[id] > 0 {
				z[id] /= r
			} else {
				z[id] *= r
			}
		}
	}
	if pp, fp := s.p.PresencePenalty, s.p.FrequencyPenalty; pp != 0 || fp != 0 {
		for id, c := range s.counts {
			if id < 0 || id >= s.vocab {
				continue
			}
			z[id] -= pp + fp*float64(c)
		}
	}
	return z
}

// draw picks an index with probability proportional to its weight, among
// idx (in that order) or, when idx is nil, among all of w.
func (s *Sampler) draw(w []float64, idx []int) int {
	var total float64
	if idx == nil {
		for _, v := range w {
			total += v
		}
	} else {
		for _, i := range idx {
			total += w[i]
		}
	}
	u := s.rng.Float64() * total
	last := -1
	var acc float64
	visit := func(i int) bool {
		if w[i] <= 0 {
			return false
		}
		last = i
		acc += w[i]
		return u < acc
	}
	if idx == nil {
		for i := range w {
			if visit(i) {
				return i
			}
		}
	} else {
		for _, i := range idx {
			if visit(i) {
				return i
			}
		}
	}
	return last // rounding left u at the very top
}

// argmax returns the index of the largest value, the lowest such index on
// ties.
func argmax(z []float64) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

// rank orders token ids by descending weight, then ascending id, so that
// every ordering below is total and therefore deterministic.
func rank(w []float64, a, b int) int {
	switch {
	case w[a] > w[b]:
		return -1
	case w[a] < w[b]:
		return 1
	}
	return a - b
}

// partition reorders idx around a pivot (its middle element) so that the
// ids ranked before the pivot come first, and returns the pivot's new index.
func partition(idx []int, w []float64) int {
	last := len(idx) - 1
	mid := len(idx) / 2
	idx[mid], idx[last] = idx[last], idx[mid]
	pivot := idx[last]
	p := 0
	for i := range last {
		if rank(w, idx[i], pivot) < 0 {
			idx[i], idx[p] = idx[p], idx[i]
			p++
		}
	}
	idx[p], idx[last] = idx[last], idx[p]
	return p
}

// selectTop reorders idx so that idx[:k] holds its k highest-ranked ids, in
// no particular order. It takes linear time on average.
func selectTop(idx []int, w []float64, k int) {
	lo, hi := 0, len(idx)
	for hi-lo > 1 {
		m := lo + partition(idx[lo:hi], w)
		switch {
		case m == k || m == k-1:
			return
		case m > k:
			hi = m
		default:
			lo = m + 1
		}
	}
}

// selectNucleus reorders idx so that idx[:n] holds the fewest
// highest-ranked ids whose weights add up to at least target, and returns
// n (at least 1). It takes linear time on average.
func selectNucleus(idx []int, w []float64, target float64) int {
	// idx[:lo] are the lo highest-ranked ids, of total weight acc < target;
	// the answer lies in (lo, hi].
	lo, hi := 0, len(idx)
	var acc float64
	for hi-lo > 1 {
		m := lo + partition(idx[lo:hi], w)
		var mass float64
		for _, i := range idx[lo:m] {
			mass += w[i]
		}
		if m > lo && acc+mass >= target {
			hi = m
			continue
		}
		acc += mass + w[idx[m]]
		if acc >= target {
			return m + 1
		}
		lo = m + 1
	}
	return max(hi, 1)
}
