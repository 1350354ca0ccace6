package train

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// BenchmarkTrain measures training throughput (forward, backward and
// AdamW) on the 124M model's shape at B=4, T=64, and on the tiny fixture
// shape. It reports tokens/s and GFLOP/s, counting 6 flops per parameter
// per token (2 forward, 4 backward) plus attention's 12*L*T*C per token;
// where the kernels can measure the machine's FMA peak it also reports
// the fraction of it reached.
func BenchmarkTrain(b *testing.B) {
	tiny := model.Config{NLayer: 2, NHead: 2, NEmbd: 64, NCtx: 128, VocabSize: 50257, LayerNormEps: 1e-5}
	for _, c := range []struct {
		name string
		cfg  model.Config
		B, T int
	}{
		{"tiny/B=2,T=32", tiny, 2, 32},
		{"124M/B=4,T=64", model.Presets["gpt2"], 4, 64},
		{"default/B=8,T=256", defaultShape, 8, 256},
	} {
		b.Run(c.name, func(b *testing.B) { benchTrain(b, c.cfg, c.B, c.T) })
	}
}

// defaultShape is the shape of the shipped default model.
var defaultShape = model.Config{NLayer: 6, NHead: 8, NEmbd: 256, NCtx: 256, VocabSize: 50257, LayerNormEps: 1e-5}

func benchTrain(b *testing.B, cfg model.Config, B, T int) {
	l, err := NewLayout(cfg)
	if err != nil {
		b.Fatal(err)
	}
	params := make([]float32, l.Size)
	Init(l, params, 1)
	g, err := NewGPT(l, params, B, T)
	if err != nil {
		b.Fatal(err)
	}
	opt := NewAdamW(l.Size, 0.9, 0.95, 1e-8, 0.1)
	rng := rand.New(rand.NewPCG(1, 1))
	tokens := make([]uint16, B*T+1)
	for i := range tokens {
		tokens[i] = uint16(rng.IntN(cfg.VocabSize))
	}
	step := func() {
		if _, err := g.Forward(tokens); err != nil {
			b.Fatal(err)
		}
		g.ZeroGrad()
		g.Backward(1)
		opt.Update(l, g.Params, g.Grads, 1e-4, ClipScale(GradNorm(g.Grads), 1))
	}
	step() // warm up: page in the buffers
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		step()
	}
	sec := time.Since(start).Seconds()
	tokensPerStep := float64(B * T)
	flops := 6*float64(l.Size)*tokensPerStep + 12*float64(cfg.NLayer*T*cfg.NEmbd)*tokensPerStep
	b.ReportMetric(tokensPerStep*float64(b.N)/sec, "tokens/s")
	gflops := flops * float64(b.N) / sec / 1e9
	b.ReportMetric(gflops, "GFLOP/s")
	peak := fmaPeakGFLOPS()
	b.ReportMetric(gflops/peak, "of-peak")
	b.Logf("%s kernels, %d threads: %.0f tokens/s, %.2f GFLOP/s, %.1f%% of the %.0f GFLOP/s FMA peak",
		kernels.Impl(), kernels.Threads(), tokensPerStep*float64(b.N)/sec, gflops, 100*gflops/peak, peak)
}

// fmaPeakGFLOPS is the machine's float32 FMA peak in GFLOP/s with the
// kernels' thread count, measured once.
var fmaPeakGFLOPS = sync.OnceValue(func() float64 { return kernels.MeasureFMAPeak(0) })
