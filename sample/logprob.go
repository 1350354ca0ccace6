package sample

import (
	"math"
	"slices"
)

// LogSumExp returns log(sum(exp(logits))), computed in float64.
func LogSumExp(logits []float32) float64 {
	hi := math.Inf(-1)
	for _, v := range logits {
		hi = max(hi, float64(v))
	}
	if math.IsInf(hi, 0) || math.IsNaN(hi) {
		return hi
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - hi)
	}
	return hi + math.Log(s)
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
// log-softmax, computed in float64.
func Logprob(logits []float32, id int) float64 {
	return float64(logits[id]) - LogSumExp(logits)
}

// TokenLogprob is a token id with its log-probability.
type TokenLogprob struct {
	ID      int
	Logprob float64
}

// TopK returns the k most likely tokens of a log-probability vector, most
// likely first (ties: lowest id first).
func TopK(logprobs []float64, k int) []TokenLogprob {
	k = min(max(k, 0), len(logprobs))
	if k == 0 {
		return nil
	}
	idx := make([]int, len(logprobs))
	for i := range idx {
		idx[i] = i
	}
	selectTop(idx, logprobs, k)
	idx = idx[:k]
	slices.SortFunc(idx, func(a, b int) int { return rank(logprobs, a, b) })
	out := make([]TokenLogprob, k)
	for i, id := range idx {
		out[i] = TokenLogprob{ID: id, Logprob: logprobs[id]}
	}
	return out
}
