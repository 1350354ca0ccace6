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

	"github.com/gpt2go/gpt2/kernels"
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
//
// Sampling is a per-token cost that batching cannot share, so it is kept
// to a pass or so over the logits, without sorting: the bias and the
// penalties touch only the tokens they apply to (on a copy), greedy
// decoding and top-k make a single pass, and exponentials are taken of
// the candidates that survive top-k only. Without top-k, the draw needs
// the exponentials of the whole vocabulary: the kernels' vector
// exponential (see vectorWeights), or, for logits it cannot take, the
// float64 table exponential of expNonPos (cheaper than math.Exp).
type Sampler struct {
	p     Params
	vocab int
	rng   *rand.Rand

	biasIDs   []int     // LogitBias's ids, ascending
	biasVals  []float64 // LogitBias's values, in the same order
	ctxIDs    []int     // tokens seen, prompt included (repetition penalty)
	inContext map[int]bool
	genIDs    []int // tokens generated (presence and frequency penalties)
	genCounts []int // times each of genIDs was generated
	genIndex  map[int]int

	z     []float32                // scratch: adjusted logits
	w     []float64                // scratch: weights of the whole vocabulary
	w32   []float32                // scratch: vectorWeights's weights
	cands []cand                   // scratch: candidates
	hist  *[nucleusBuckets]float64 // scratch: top-p's histogram
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
	s := &Sampler{
		p:         p,
		vocab:     vocab,
		rng:       rand.New(rand.NewPCG(p.Seed, pcgStream)),
		inContext: map[int]bool{},
		genIndex:  map[int]int{},
	}
	s.biasIDs = slices.Sorted(maps.Keys(p.LogitBias))
	for _, id := range s.biasIDs {
		s.biasVals = append(s.biasVals, float64(p.LogitBias[id]))
	}
	return s, nil
}

// Params returns the sampler's parameters.
func (s *Sampler) Params() Params { return s.p }

// ObserveContext records prompt tokens, which the repetition penalty counts
// but the presence and frequency penalties do not.
func (s *Sampler) ObserveContext(ids ...int) {
	for _, id := range ids {
		s.see(id)
	}
}

// Observe records a generated token, for the penalties.
func (s *Sampler) Observe(id int) {
	if !s.see(id) {
		return
	}
	if j, ok := s.genIndex[id]; ok {
		s.genCounts[j]++
		return
	}
	s.genIndex[id] = len(s.genIDs)
	s.genIDs = append(s.genIDs, id)
	s.genCounts = append(s.genCounts, 1)
}

// see records id as in the context and reports whether it is in the
// vocabulary (the penalties ignore other ids).
func (s *Sampler) see(id int) bool {
	if id < 0 || id >= s.vocab {
		return false
	}
	if !s.inContext[id] {
		s.inContext[id] = true
		s.ctxIDs = append(s.ctxIDs, id)
	}
	return true
}

// Sample draws the next token from logits (at least vocab of them). It does
// not modify logits, and given the same seed, observations and logits it
// always returns the same token. NaN logits count as -Inf.
func (s *Sampler) Sample(logits []float32) int {
	z := s.adjust(logits)
	inv := 1 / s.p.Temperature
	if s.p.Temperature == 0 || math.IsInf(inv, 0) {
		// Greedy, or a temperature so small it is greedy: the weights
		// below would be NaN.
		return argmax(z)
	}
	k := s.p.TopK
	if k == 0 || k > len(z) {
		k = len(z)
	}
	nucleus := s.p.TopP > 0 && s.p.TopP < 1
	switch {
	case k < len(z):
		c := topCands(s.cands[:0], z, k)
		s.cands = c
		hi, ok := peak(c)
		if !ok {
			return argmax(z)
		}
		weigh(c, hi, inv)
		if nucleus {
			var total float64
			for _, x := range c {
				total += x.w
			}
			c = c[:selectNucleus(c, s.p.TopP*total)]
		}
		return s.draw(c)
	case nucleus:
		return s.sampleNucleus(z, inv)
	default:
		return s.sampleAll(z, inv)
	}
}

// peak returns the largest logit among candidates c, and whether it is
// finite: there may be no candidates (every logit NaN or -Inf), or an
// infinite logit, which the callers draw greedily.
func peak(c []cand) (float64, bool) {
	if len(c) == 0 {
		return 0, false
	}
	hi := c[0].w
	for _, x := range c[1:] {
		hi = max(hi, x.w)
	}
	return hi, !math.IsInf(hi, 0)
}

// weigh replaces the logits of candidates c by their weights at
// temperature 1/inv, relative to hi, the largest (whose weight is 1).
func weigh(c []cand, hi, inv float64) {
	for i := range c {
		c[i].w = expNonPos((c[i].w - hi) * inv)
	}
}

// vectorWeights sets the weights of the whole vocabulary at temperature
// 1/inv, e^((z[i]-hi)*inv) for the largest logit hi, with the kernels'
// vector exponential in float32 (relative error about 1e-7 per weight, far
// below anything a draw can show; float64 exponentials one at a time cost
// five times as much), and returns them, hi and their sum. It reports
// false for logits it cannot take: NaN among them, an infinite one, or a
// temperature whose scaling overflows. A banned token (-Inf) gets the
// smallest normal weight, not zero: callers must skip it.
func (s *Sampler) vectorWeights(z []float32, inv float64) (w []float32, hi float32, total float64, ok bool) {
	hi, a := kernels.Max(z), float32(inv)
	if hi-hi != 0 || !(a > 0) || a-a != 0 { // not both finite
		return nil, 0, 0, false
	}
	if s.w32 == nil {
		s.w32 = make([]float32, s.vocab)
	}
	w = s.w32[:len(z)]
	// Every weight is at most e^0 = 1, and the largest logit's is 1, so a
	// sum outside [1, len(z)] means a NaN among the logits (Max passes
	// over it; the vector exponential takes it to its upper clamp) or
	// overflow.
	total = float64(kernels.Exp(w, z, hi, a))
	if !(total >= 1 && total <= float64(len(z))) {
		return nil, 0, 0, false
	}
	return w, hi, total, true
}

// sampleAll draws from the whole vocabulary at temperature 1/inv, with
// vectorWeights, or sampleAllExact where it cannot.
func (s *Sampler) sampleAll(z []float32, inv float64) int {
	w, _, total, ok := s.vectorWeights(z, inv)
	if !ok {
		return s.sampleAllExact(z, inv)
	}
	negInf := float32(math.Inf(-1))
	u := s.rng.Float64() * total
	last := 0
	var acc float64
	for i, v := range w {
		if z[i] == negInf { // banned: never drawn
			continue
		}
		last = i
		acc += float64(v)
		if u < acc {
			return i
		}
	}
	return last // rounding left u at the very top
}

// sampleAllExact is sampleAll with float64 weights, for logits with NaNs
// (which count as -Inf) or infinities.
func (s *Sampler) sampleAllExact(z []float32, inv float64) int {
	top := argmax(z)
	hi := float64(z[top])
	if math.IsInf(hi, 0) || hi != hi {
		return top // all banned (-Inf or NaN), or an infinite logit
	}
	if s.w == nil {
		s.w = make([]float64, s.vocab)
	}
	w := s.w[:len(z)]
	total := expFill(w, z, hi, inv)
	u := s.rng.Float64() * total
	last := top
	var acc float64
	for i, v := range w {
		if v <= 0 {
			continue
		}
		last = i
		acc += v
		if u < acc {
			return i
		}
	}
	return last // rounding left u at the very top
}

// sampleNucleus draws from the smallest set of most likely tokens whose
// probabilities at temperature 1/inv add up to at least TopP, taking the
// exponentials of all the logits but sorting none: the pass that sums the
// weights also histograms them by tempered logit, in steps of 1/8, which
// tells how far below the largest logit the set reaches. The tokens above
// that bound (and one step more, for rounding) are the candidates, a few
// more than the set itself.
func (s *Sampler) sampleNucleus(z []float32, inv float64) int {
	if s.hist == nil {
		s.hist = new([nucleusBuckets]float64)
	}
	hist := s.hist
	*hist = [nucleusBuckets]float64{}
	var hi float64
	w, h, total, ok := s.vectorWeights(z, inv)
	if ok {
		hi = float64(h)
		for i, v := range w {
			hist[bucket((float64(z[i])-hi)*inv)] += float64(v)
		}
	} else {
		top := argmax(z)
		hi = float64(z[top])
		if math.IsInf(hi, 0) || hi != hi {
			return top // all banned (-Inf or NaN), or an infinite logit
		}
		total = expSumHist(z, hi, inv, hist)
	}
	target := s.p.TopP * total
	b := 0
	for acc := 0.0; b < nucleusBuckets-1; b++ {
		if acc += hist[b]; acc >= target {
			break
		}
	}
	c := s.cands[:0]
	if b < nucleusBuckets-2 {
		cut := float32(hi - float64(b+2)/(nucleusStep*inv))
		for i, v := range z {
			if v >= cut {
				c = append(c, cand{float64(v), i})
			}
		}
		weigh(c, hi, inv)
		var mass float64
		for _, x := range c {
			mass += x.w
		}
		if mass < target { // only if rounding defeated the bound
			c = c[:0]
		}
	}
	if len(c) == 0 {
		c = topCands(c, z, len(z))
		weigh(c, hi, inv)
	}
	s.cands = c
	return s.draw(c[:selectNucleus(c, target)])
}

// adjust returns the first vocab logits with the logit bias and the
// penalties applied: logits itself when there are none to apply, else a
// copy in the scratch buffer, in which only the tokens concerned differ.
func (s *Sampler) adjust(logits []float32) []float32 {
	if len(logits) < s.vocab {
		panic(fmt.Sprintf("sample: %d logits for a vocabulary of %d", len(logits), s.vocab))
	}
	logits = logits[:s.vocab]
	r := s.p.RepetitionPenalty
	repetition := r != 0 && r != 1 && len(s.ctxIDs) > 0
	pp, fp := s.p.PresencePenalty, s.p.FrequencyPenalty
	presence := (pp != 0 || fp != 0) && len(s.genIDs) > 0
	if len(s.biasIDs) == 0 && !repetition && !presence {
		return logits
	}
	if s.z == nil {
		s.z = make([]float32, s.vocab)
	}
	z := s.z
	copy(z, logits)
	for i, id := range s.biasIDs {
		z[id] = float32(float64(z[id]) + s.biasVals[i])
	}
	if repetition {
		for _, id := range s.ctxIDs {
			if v := float64(z[id]); v > 0 {
				z[id] = float32(v / r)
			} else {
				z[id] = float32(v * r)
			}
		}
	}
	if presence {
		for i, id := range s.genIDs {
			z[id] = float32(float64(z[id]) - pp - fp*float64(s.genCounts[i]))
		}
	}
	return z
}

// draw picks a candidate with probability proportional to its weight,
// trying them in order, and returns its id.
func (s *Sampler) draw(c []cand) int {
	var total float64
	for _, x := range c {
		total += x.w
	}
	u := s.rng.Float64() * total
	last := c[0].id
	var acc float64
	for _, x := range c {
		if x.w <= 0 {
			continue
		}
		last = x.id
		acc += x.w
		if u < acc {
			return x.id
		}
	}
	return last // rounding left u at the very top
}
