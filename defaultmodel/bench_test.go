package defaultmodel_test

import (
	"fmt"
	"testing"

	"github.com/gpt2go/gpt2/defaultmodel"
	"github.com/gpt2go/gpt2/model"
)

// BenchmarkDecodeBatch reports forward-pass tokens/s of the default model
// decoding one token for each of n sequences per step, the work of a
// serving step with n clients: contexts of 8 to 40 tokens, the load
// benchmark's requests (serve.BenchmarkLoad).
func BenchmarkDecodeBatch(b *testing.B) {
	m, _, err := defaultmodel.Load()
	if err != nil {
		b.Fatal(err)
	}
	V := m.Config.VocabSize
	for _, n := range []int{1, 4, 16} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			steps := make([]model.Step, n)
			for i := range steps {
				prompt := make([]int, 8)
				for j := range prompt {
					prompt[j] = (i*131 + j*7919) % V
				}
				steps[i] = model.Step{Cache: m.NewCache(), Tokens: prompt}
			}
			if _, err := m.Forward(steps); err != nil {
				b.Fatal(err)
			}
			buf := make([]float32, n*V)
			for t := 0; b.Loop(); t++ {
				for i := range steps {
					if steps[i].Cache.Len >= 40 {
						steps[i].Cache.Truncate(8)
					}
					steps[i].Tokens = []int{(t*31 + i) % V}
				}
				if _, err := m.ForwardInto(buf, steps); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}
