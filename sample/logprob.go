package sample

import (
	"math"
	"slices"
)

// LogSumExp returns log(sum(exp(logits))), in float64, to within a few
// units of 1e-13 of the correctly rounded result (the exponentials are
// fast ones; see expNonPos). It is NaN if any logit is NaN.
func LogSumExp(logits []float32) float64 {
	hi := float32(math.Inf(-1))
	nan := false
	for _, v := range logits {
		if v > hi {
			hi = v
		} else if v != v {
			nan = true
		}
	}
	switch {
	case nan:
		return math.NaN()
	case math.IsInf(float64(hi), 0): // all -Inf (or none), or an infinite logit
		return float64(hi)
	}
	return float64(hi) + math.Log(expSum(logits, float64(hi), 1))
}

// LogSoftmax returns the log-probabilities of logits, computed in float64.
func LogSoftmax(logits []float32) []float64 {
	lse := LogSumExp(logits)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - lse
	}
	return out
}

// Logprob returns the log-probability of token id under logits: its
// log-softmax, computed in float64 (as LogSumExp).
func Logprob(logits []float32, id int) float64 {
	// -log(sum(exp(logits - logits[id]))) takes one pass instead of
	// LogSumExp's two, unless some logit is so far above logits[id]
	// that its exponential would overflow, or one is NaN.
	a := logits[id]
	if s, ok := expSumAbove(logits, float64(a)); ok {
		return -math.Log(s)
	}
	return float64(a) - LogSumExp(logits)
}

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	ID      int
	Logprob float64
}

// TopK returns the k most likely tokens of a log-probability vector, most
// likely first (ties: lowest id first). NaN entries are never returned,
// nor are -Inf ones.
func TopK(logprobs []float64, k int) []TokenLogprob {
	c := topCands(nil, logprobs, min(k, len(logprobs)))
	if len(c) == 0 {
		return nil
	}
	slices.SortFunc(c, rank)
	out := make([]TokenLogprob, len(c))
	for i, x := range c {
		out[i] = TokenLogprob{ID: x.id, Logprob: x.w}
	}
	return out
}
