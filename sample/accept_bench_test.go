package sample

import (
	"math/rand/v2"
	"testing"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// benchLogits returns a logit vector the size of GPT-2's vocabulary, drawn
// from a normal distribution of standard deviation 3: about the spread of
// GPT-2's logits, with a long upper tail, so that top-p keeps hundreds of
// tokens at temperature 0.8.
func benchLogits() []float32 {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, 50257)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	return logits
}

// BenchmarkAccept measures Sequence.Accept, the per-token cost of drawing a
// token that batching cannot share, with the token's log-probability
// (the default) and without (SkipLogprobs).
func BenchmarkAccept(b *testing.B) {
	logits := benchLogits()
	m, err := model.New(model.Config{NLayer: 1, NHead: 1, NEmbd: 2, NCtx: 1 << 16, VocabSize: 50257, LayerNormEps: 1e-5})
	if err != nil {
		b.Fatal(err)
	}
	tok := tokenizer.Default()
	prompt := []int{464, 2068, 286, 262, 1748, 6140}
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{}},
		{"temperature", Params{Temperature: 0.8}},
		{"top-k40", Params{Temperature: 0.8, TopK: 40}},
		{"top-p0.9", Params{Temperature: 0.8, TopP: 0.9}},
		{"top-k40-top-p0.9", Params{Temperature: 0.8, TopK: 40, TopP: 0.9}},
		{"penalties", Params{Temperature: 0.8, TopK: 40, RepetitionPenalty: 1.2, FrequencyPenalty: 0.5}},
	} {
		for _, skip := range []bool{false, true} {
			name := c.name + "/logprobs"
			if skip {
				name = c.name + "/skip-logprobs"
			}
			b.Run(name, func(b *testing.B) {
				var s *Sequence
				for b.Loop() {
					if s == nil || s.Done() {
						b.StopTimer()
						s, err = NewSequence(m, tok, nil, prompt, Options{Params: c.p, SkipLogprobs: skip})
						if err != nil {
							b.Fatal(err)
						}
						b.StartTimer()
					}
					s.cache.Len = len(s.ids)
					s.Accept(logits)
				}
			})
		}
	}
}
