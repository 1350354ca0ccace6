package model_test

import (
	"math/rand/v2"
	"testing"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// randomModel is a float32 model of shape c with N(0, 0.02) weights and
// unit layer-norm gains: the statistics of a trained GPT-2, not its values.
func randomModel(b *testing.B, c model.Config) *model.Model {
	m, err := model.New(c)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	fill := func(v []float32) {
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
	ones := func(v []float32) {
		for i := range v {
			v[i] = 1
		}
	}
	fill(m.WTE.F32)
	fill(m.WPE)
	ones(m.LNFG)
	for i := range m.Blocks {
		bl := &m.Blocks[i]
		ones(bl.LN1G)
		ones(bl.LN2G)
		for _, w := range []*model.Linear{&bl.Attn, &bl.AttnProj, &bl.FC, &bl.FCProj} {
			fill(w.W.F32)
		}
	}
	return m
}

// BenchmarkForward reports forward-pass tokens/s on GPT-2 124M's shape:
// prefill of a 128-token prompt, and decode of one token at a time through
// the KV cache (batch 1, contexts up to 128, as gpt2 bench) for each
// weight type.
func BenchmarkForward(b *testing.B) {
	m := randomModel(b, model.Presets["gpt2"])
	prompt := make([]int, 128)
	for i := range prompt {
		prompt[i] = (i * 7919) % m.Config.VocabSize
	}
	cache := m.NewCache()
	b.Run("prefill128", func(b *testing.B) {
		for b.Loop() {
			cache.Reset()
			if _, err := m.Forward([]model.Step{{Cache: cache, Tokens: prompt}}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*len(prompt))/b.Elapsed().Seconds(), "tokens/s")
	})
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16, kernels.Q8_0} {
		b.Run("decode/"+dt.String(), func(b *testing.B) {
			mt, err := m.Convert(dt)
			if err != nil {
				b.Fatal(err)
			}
			logits := make([]float32, m.Config.VocabSize)
			cache.Reset()
			for i := 0; b.Loop(); i++ {
				if cache.Len == 128 {
					cache.Reset()
				}
				if _, err := mt.ForwardInto(logits, []model.Step{{Cache: cache, Tokens: []int{i % m.Config.VocabSize}}}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
