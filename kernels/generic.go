package kernels

// The generic implementation: plain Go, on every machine. It computes what
// the references do, in the same order for each output, but lays the
// loops out to keep several outputs in registers.

// matMulTGeneric computes columns [lo, hi) of out = x @ w^T: each output is
// the sum over the inputs in order, four outputs at a time.
func matMulTGeneric(out, x []float32, n int, w *Mat, lo, hi int) {
	k, m := w.Cols, w.Rows
	if w.DType != F32 {
		matMulTRef(out, x, n, w, lo, hi)
		return
	}
	j := lo
	for ; j+4 <= hi; j += 4 {
		w0 := w.F32[j*k : (j+1)*k]
		w1 := w.F32[(j+1)*k : (j+2)*k]
		w2 := w.F32[(j+2)*k : (j+3)*k]
		w3 := w.F32[(j+3)*k : (j+4)*k]
		for i := 0; i < n; i++ {
			xi := x[i*k : (i+1)*k]
			w0, w1, w2, w3 := w0[:len(xi)], w1[:len(xi)], w2[:len(xi)], w3[:len(xi)] // no bounds checks below
			var s0, s1, s2, s3 float32
			for p, v := range xi {
				s0 += v * w0[p]
				s1 += v * w1[p]
				s2 += v * w2[p]
				s3 += v * w3[p]
			}
			o := out[i*m+j : i*m+j+4]
			o[0], o[1], o[2], o[3] = s0, s1, s2, s3
		}
	}
	if j < hi {
		matMulTRef(out, x, n, w, j, hi)
	}
}
