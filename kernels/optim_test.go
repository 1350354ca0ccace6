package kernels

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestAdamW checks every implementation against the plain-Go reference bit
// for bit (they promise the same operations in the same order), and the
// reference against the update computed in float64.
func TestAdamW(t *testing.T) {
	c := AdamWStep{GradScale: 0.7, Decay: 1 - 1e-3*0.1, OneMinusBeta1: 1 - 0.9, Beta2: 0.95, OneMinusBeta2: 1 - float32(0.95),
		InvBC2Sqrt: float32(1 / math.Sqrt(1-math.Pow(0.95, 3))), Eps: 1e-8, StepSize: float32(1e-3 / (1 - math.Pow(0.9, 3)))}
	eachImpl(t, func(t *testing.T) {
		for _, n := range []int{1, 7, 16, 33, 1000, 70001} {
			r := rand.New(rand.NewPCG(uint64(n), 9))
			p, g := uniform(r, n, 1), uniform(r, n, 1)
			m, v := uniform(r, n, 0.1), uniform(r, n, 0.01)
			for i := range v {
				v[i] = float32(math.Abs(float64(v[i])))
			}
			wp, wm, wv := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
			adamWRef(wp, g, wm, wv, c)
			p0, m0, v0 := append([]float32(nil), p...), append([]float32(nil), m...), append([]float32(nil), v...)
			AdamW(p, g, m, v, c)
			for i := range p {
				if p[i] != wp[i] || m[i] != wm[i] || v[i] != wv[i] {
					t.Fatalf("n=%d [%d]: p, m, v = %g, %g, %g; reference %g, %g, %g", n, i, p[i], m[i], v[i], wp[i], wm[i], wv[i])
				}
				// The reference against float64 arithmetic.
				gj := float64(g[i]) * float64(c.GradScale)
				mj := float64(m0[i]) + float64(c.OneMinusBeta1)*(gj-float64(m0[i]))
				vj := float64(v0[i])*float64(c.Beta2) + float64(c.OneMinusBeta2)*gj*gj
				pj := float64(p0[i])*float64(c.Decay) - float64(c.StepSize)*mj/(math.Sqrt(vj)*float64(c.InvBC2Sqrt)+float64(c.Eps))
				if d := math.Abs(pj - float64(p[i])); d > 1e-6*(math.Abs(pj)+1e-3) {
					t.Fatalf("n=%d [%d]: p = %g, float64 %g", n, i, p[i], pj)
				}
			}
		}
	})
}
