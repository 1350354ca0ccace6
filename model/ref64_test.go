package model_test

import (
	"math"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// forward64 is GPT-2's forward pass in float64, written plainly from the
// definition, over m's weights whatever their type (each widened exactly
// to float64). It returns the logits at every position of ids. It is the
// reference for a model whose weights are not the fixture's: a model
// converted to f16 or bf16 has its own weights, whose rounding is not an
// error of the arithmetic.
func forward64(m *model.Model, ids []int) [][]float64 {
	cfg := m.Config
	C, T, H := cfg.NEmbd, len(ids), cfg.NHead
	hs := C / H
	eps := cfg.LayerNormEps
	mat := func(w *kernels.Mat) [][]float64 {
		f := w.Float32()
		out := make([][]float64, w.Rows)
		for i := range out {
			out[i] = widen(f[i*w.Cols : (i+1)*w.Cols])
		}
		return out
	}
	linear := func(x [][]float64, l *model.Linear) [][]float64 {
		w := mat(&l.W)
		out := make([][]float64, len(x))
		for t, xt := range x {
			o := widen(l.B)
			if o == nil {
				o = make([]float64, l.W.Cols)
			}
			for i, v := range xt {
				for j, wij := range w[i] {
					o[j] += v * wij
				}
			}
			out[t] = o
		}
		return out
	}
	layerNorm := func(x [][]float64, g, b []float32) [][]float64 {
		out := make([][]float64, len(x))
		for t, xt := range x {
			var mean, variance float64
			for _, v := range xt {
				mean += v
			}
			mean /= float64(len(xt))
			for _, v := range xt {
				variance += (v - mean) * (v - mean)
			}
			variance /= float64(len(xt))
			o := make([]float64, len(xt))
			for i, v := range xt {
				o[i] = (v-mean)/math.Sqrt(variance+eps)*float64(g[i]) + float64(b[i])
			}
			out[t] = o
		}
		return out
	}

	wte := mat(&m.WTE)
	x := make([][]float64, T)
	for t, id := range ids {
		x[t] = make([]float64, C)
		for i := range C {
			x[t][i] = wte[id][i] + float64(m.WPE[t*C+i])
		}
	}
	for l := range m.Blocks {
		b := &m.Blocks[l]
		qkv := linear(layerNorm(x, b.LN1G, b.LN1B), &b.Attn)
		att := make([][]float64, T)
		for t := range T {
			att[t] = make([]float64, C)
			for h := range H {
				q := qkv[t][h*hs : (h+1)*hs]
				scores := make([]float64, t+1)
				top := math.Inf(-1)
				for s := 0; s <= t; s++ {
					k := qkv[s][C+h*hs : C+(h+1)*hs]
					for i := range hs {
						scores[s] += q[i] * k[i]
					}
					scores[s] /= math.Sqrt(float64(hs))
					top = max(top, scores[s])
				}
				var sum float64
				for s := range scores {
					scores[s] = math.Exp(scores[s] - top)
					sum += scores[s]
				}
				for s := 0; s <= t; s++ {
					v := qkv[s][2*C+h*hs : 2*C+(h+1)*hs]
					for i := range hs {
						att[t][h*hs+i] += scores[s] / sum * v[i]
					}
				}
			}
		}
		proj := linear(att, &b.AttnProj)
		for t := range T {
			for i := range C {
				x[t][i] += proj[t][i]
			}
		}
		fc := linear(layerNorm(x, b.LN2G, b.LN2B), &b.FC)
		for _, row := range fc {
			for i, v := range row {
				row[i] = 0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v)))
			}
		}
		proj = linear(fc, &b.FCProj)
		for t := range T {
			for i := range C {
				x[t][i] += proj[t][i]
			}
		}
	}
	h := layerNorm(x, m.LNFG, m.LNFB)
	head := mat(m.Output())
	logits := make([][]float64, T)
	for t := range T {
		logits[t] = make([]float64, len(head))
		for v, w := range head {
			for i := range C {
				logits[t][v] += h[t][i] * w[i]
			}
		}
	}
	return logits
}

func widen(f []float32) []float64 {
	if f == nil {
		return nil
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out
}

// logSoftmax64 returns the log-softmax of logits.
func logSoftmax64(logits []float64) []float64 {
	top := math.Inf(-1)
	for _, v := range logits {
		top = max(top, v)
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(v - top)
	}
	lse := top + math.Log(sum)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = v - lse
	}
	return out
}

// TestForward64 holds the float64 reference to the fixture's: computed
// from the same float32 weights in float64, the two agree to rounding
// (the fixture's README: about 1e-12), far inside the engine's 5e-6.
func TestForward64(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	m := load(t, dir)
	var worst float64
	for _, seq := range exp.Sequences {
		if len(seq.InputIDs) > 64 {
			continue // the long ones take seconds in plain float64
		}
		logits := forward64(m, seq.InputIDs)
		for i, want := range seq.NextTokenLogprobs {
			d := math.Abs(logSoftmax64(logits[i])[seq.InputIDs[i+1]] - want)
			worst = max(worst, d)
			if d > 1e-10 {
				t.Fatalf("%s position %d: float64 reference %.12f, fixture %.12f", seq.Name, i, logSoftmax64(logits[i])[seq.InputIDs[i+1]], want)
			}
		}
	}
	t.Logf("largest difference from the fixture %.2g", worst)
}
