package kernels

import "math"

// Plain-Go references. They define what each kernel computes; the generic
// implementation is built from them and tests compare every other
// implementation against them.

// matMulRef computes rows [0, n) of out = x @ w + bias for w in [in, out]
// layout. Each output is bias, then a sum over the inputs in order.
func matMulRef(out, x []float32, n int, w *Mat, bias []float32) {
	matMulColsRef(out, x, n, w, bias, 0, w.Cols, false)
}

// matMulColsRef is matMulRef restricted to output columns [lo, hi).
func matMulColsRef(out, x []float32, n int, w *Mat, bias []float32, lo, hi int, acc bool) {
	k, m := w.Rows, w.Cols
	var wr []float32
	if w.DType != F32 {
		wr = make([]float32, hi-lo)
	}
	for i := 0; i < n && !acc; i++ {
		o := out[i*m+lo : i*m+hi]
		if bias != nil {
			copy(o, bias[lo:hi])
		} else {
			clear(o)
		}
	}
	for p := 0; p < k; p++ {
		if w.DType == F32 {
			wr = w.F32[p*m+lo : p*m+hi]
		} else {
			w.rowSpan(wr, p, lo, hi)
		}
		for i := 0; i < n; i++ {
			a := x[i*k+p]
			o := out[i*m+lo : i*m+hi]
			for j := range o {
				o[j] += a * wr[j]
			}
		}
	}
}

// matMulTRef computes columns [lo, hi) of out = x @ w^T, each a sum over
// the inputs in order.
func matMulTRef(out, x []float32, n int, w *Mat, lo, hi int) {
	k, m := w.Cols, w.Rows
	var wr []float32
	if w.DType != F32 {
		wr = make([]float32, k)
	}
	for j := lo; j < hi; j++ {
		if w.DType == F32 {
			wr = w.F32[j*k : (j+1)*k]
		} else {
			w.Row(wr, j)
		}
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
		layerNormRowRef(out[i*c:(i+1)*c], x[i*c:(i+1)*c], g, b, eps)
	}
}

// layerNormStatsRowRef returns the mean and reciprocal standard deviation
// (biased variance) of one row, in float32 as the forward pass uses them.
func layerNormStatsRowRef(xi []float32, eps float32) (mean, rstd float32) {
	c := len(xi)
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
	return mean, 1 / float32(math.Sqrt(float64(variance+eps)))
}

func layerNormRowRef(o, xi, g, b []float32, eps float32) {
	mean, rstd := layerNormStatsRowRef(xi, eps)
	for j, v := range xi {
		o[j] = (v-mean)*rstd*g[j] + b[j]
	}
}

// geluScale is sqrt(2/pi).
const geluScale = 0.7978845608028654

func geluRef(out, x []float32) {
	for i, v := range x {
		out[i] = 0.5 * v * (1 + float32(math.Tanh(float64(geluScale*(v+0.044715*v*v*v)))))
	}
}

// maxRef is Max: the largest value that is not NaN.
func maxRef(x []float32) float32 {
	m := float32(math.Inf(-1))
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	return m
}

// expRef is Exp: exponentials in float64 rounded once, summed in float64.
func expRef(out, x []float32, m, a float32) float32 {
	var sum float64
	for i, v := range x {
		e := float32(math.Exp(float64(a*v) - float64(a*m)))
		out[i] = e
		sum += float64(e)
	}
	return float32(sum)
}

func softmaxRowRef(out, x []float32) {
	maxv := float32(math.Inf(-1))
	for _, v := range x {
		maxv = max(maxv, v)
	}
	var sum float32
	for i, v := range x {
		e := float32(math.Exp(float64(v - maxv)))
		out[i] = e
		sum += e
	}
	inv := 1 / sum
	for i := range out {
		out[i] *= inv
	}
}

// attentionRowRef computes the output of head h for new position i, with
// the keys in Attention's blocks and the values in rows of stride ld.
func attentionRowRef(out, q, kc, vc, att []float32, i, h, pos, nHead, hs, ld int) {
	c := nHead * hs
	qi := q[i*c+h*hs : i*c+(h+1)*hs]
	n := pos + i + 1 // positions this query may see
	scale := float32(1 / math.Sqrt(float64(hs)))
	maxv := float32(math.Inf(-1))
	for p := 0; p < n; p++ {
		var s float32
		for d := range qi {
			s += qi[d] * kc[keyIndex(p, h*hs+d, c)]
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
