package model_test

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// randomModel is a float32 model of shape c with N(0, 0.02) weights and
// unit layer-norm gains: the statistics of a trained GPT-2, not its values.
func randomModel(b testing.TB, c model.Config) *model.Model {
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

// BenchmarkDecodeRatios decodes with each weight type in turn, a short
// run of tokens each, and reports the median over rounds of each type's
// speed relative to float32's in the same round: the ratios issue 3's
// floors name. On a shared machine throughput drifts by tens of percent
// within minutes; runs this short and this close together see the same
// conditions, so their ratios hold still where separate benchmarks' do
// not. One iteration is one round.
func BenchmarkDecodeRatios(b *testing.B) {
	const tokens = 16 // per type and round
	m := randomModel(b, model.Presets["gpt2"])
	types := []kernels.DType{kernels.F32, kernels.F16, kernels.BF16, kernels.Q8_0}
	models := make([]*model.Model, len(types))
	for i, dt := range types {
		mt, err := m.Convert(dt)
		if err != nil {
			b.Fatal(err)
		}
		models[i] = mt
	}
	cache := m.NewCache()
	logits := make([]float32, m.Config.VocabSize)
	decode := func(mt *model.Model) float64 {
		cache.Reset()
		start := time.Now()
		for i := range tokens {
			if _, err := mt.ForwardInto(logits, []model.Step{{Cache: cache, Tokens: []int{(i * 7919) % m.Config.VocabSize}}}); err != nil {
				b.Fatal(err)
			}
		}
		return tokens / time.Since(start).Seconds()
	}
	for _, mt := range models { // warm up: fault in and cache what can be
		decode(mt)
	}
	ratios := make([][]float64, len(types))
	var f32 []float64
	for b.Loop() {
		base := decode(models[0])
		f32 = append(f32, base)
		for i := 1; i < len(models); i++ {
			ratios[i] = append(ratios[i], decode(models[i])/base)
		}
	}
	b.ReportMetric(median(f32), "f32-tokens/s")
	for i := 1; i < len(types); i++ {
		b.ReportMetric(median(ratios[i]), types[i].String()+"/f32")
	}
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}
