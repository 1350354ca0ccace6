// Package kernels holds the numerical kernels of the GPT-2 forward and
// backward passes. Each exported kernel has a plain-Go reference
// implementation (the *Ref functions); faster implementations are chosen at
// run time where the CPU supports them, and tests compare them to the
// references.
package kernels

import "math"

// MatMul computes out[n, w.Cols] = x[n, w.Rows] @ w + bias, with w in the
// [in, out] ("Conv1D") layout of GPT-2 checkpoints. bias may be nil.
func MatMul(out, x []float32, n int, w *Mat, bias []float32) {
	k, m := w.Rows, w.Cols
	_ = out[n*m-1]
	_ = x[n*k-1]
	Parallel(n, 1, func(lo, hi int) {
		matMulRef(out[lo*m:hi*m], x[lo*k:hi*k], hi-lo, w, bias)
	})
}

// MatMulT computes out[n, w.Rows] = x[n, w.Cols] @ w^T: w is in the
// [out, in] layout, as the token embedding is when it doubles as the
// output projection.
func MatMulT(out, x []float32, n int, w *Mat) {
	k, m := w.Cols, w.Rows
	_ = out[n*m-1]
	_ = x[n*k-1]
	Parallel(m, 64, func(lo, hi int) {
		matMulTRef(out, x, n, w, lo, hi)
	})
}

// LayerNorm normalises each of the n rows of x (length c) to zero mean and
// unit variance (biased), then scales by g and shifts by b.
func LayerNorm(out, x, g, b []float32, n, c int, eps float32) {
	layerNormRef(out, x, g, b, n, c, eps)
}

// GELU applies the tanh approximation of GELU used by GPT-2, in place
// allowed (out may alias x).
func GELU(out, x []float32) {
	geluRef(out, x)
}

// Add computes out = a + b elementwise (out may alias a or b).
func Add(out, a, b []float32) {
	for i := range out {
		out[i] = a[i] + b[i]
	}
}

// Attention computes causal multi-head attention for t new positions of one
// sequence. q holds the new queries [t, nHead*hs]; kc and vc hold the keys
// and values of positions 0..pos+t-1, one row of stride ld per position; the
// new positions are pos..pos+t-1. out receives [t, nHead*hs].
func Attention(out, q, kc, vc []float32, t, pos, nHead, hs, ld int) {
	Parallel(t*nHead, 1, func(lo, hi int) {
		att := make([]float32, pos+t)
		for i := lo; i < hi; i++ {
			attentionRowRef(out, q, kc, vc, att, i/nHead, i%nHead, pos, nHead, hs, ld)
		}
	})
}

// --- plain-Go references ---

func matMulRef(out, x []float32, n int, w *Mat, bias []float32) {
	k, m := w.Rows, w.Cols
	wd := w.F32
	for i := 0; i < n; i++ {
		o := out[i*m : (i+1)*m]
		if bias != nil {
			copy(o, bias[:m])
		} else {
			clear(o)
		}
		xi := x[i*k : (i+1)*k]
		for p, a := range xi {
			wr := wd[p*m : (p+1)*m]
			for j := range o {
				o[j] += a * wr[j]
			}
		}
	}
}

// matMulTRef computes columns [lo, hi) of out = x @ w^T.
func matMulTRef(out, x []float32, n int, w *Mat, lo, hi int) {
	k, m := w.Cols, w.Rows
	wd := w.F32
	for j := lo; j < hi; j++ {
		wr := wd[j*k : (j+1)*k]
		for i := 0; i < n; i++ {
			xi := x[i*k : (i+1)*k]
			var s float32
			for p := range wr {
				s += xi[p] * wr[p]
			}
			out[i*m+j] = s
		}
	}
}

func layerNormRef(out, x, g, b []float32, n, c int, eps float32) {
	for i := 0; i < n; i++ {
		xi := x[i*c : (i+1)*c]
		var mean float32
		for _, v := range xi {
			mean += v
		}
		mean /= float32(c)
		var variance float32
		for _, v := range xi {
			d := v - mean
			variance += d * d
		}
		variance /= float32(c)
		rstd := 1 / float32(math.Sqrt(float64(variance+eps)))
		o := out[i*c : (i+1)*c]
		for j, v := range xi {
			o[j] = (v-mean)*rstd*g[j] + b[j]
		}
	}
}

// geluScale is sqrt(2/pi).
const geluScale = 0.7978845608028654

func geluRef(out, x []float32) {
	for i, v := range x {
		out[i] = 0.5 * v * (1 + float32(math.Tanh(float64(geluScale*(v+0.044715*v*v*v)))))
	}
}

// attentionRowRef computes the output of head h for new position i.
func attentionRowRef(out, q, kc, vc, att []float32, i, h, pos, nHead, hs, ld int) {
	c := nHead * hs
	qi := q[i*c+h*hs : i*c+(h+1)*hs]
	n := pos + i + 1 // positions this query may see
	scale := float32(1 / math.Sqrt(float64(hs)))
	maxv := float32(math.Inf(-1))
	for p := 0; p < n; p++ {
		kp := kc[p*ld+h*hs : p*ld+(h+1)*hs]
		var s float32
		for d := range qi {
			s += qi[d] * kp[d]
		}
		s *= scale
		att[p] = s
		maxv = max(maxv, s)
	}
	var sum float32
	for p := 0; p < n; p++ {
		e := float32(math.Exp(float64(att[p] - maxv)))
		att[p] = e
		sum += e
	}
	o := out[i*c+h*hs : i*c+(h+1)*hs]
	clear(o)
	inv := 1 / sum
	for p := 0; p < n; p++ {
		a := att[p] * inv
		vp := vc[p*ld+h*hs : p*ld+(h+1)*hs]
		for d := range o {
			o[d] += a * vp[d]
		}
	}
}
