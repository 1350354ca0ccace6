package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// Backward kernels for training. Each one splits its work so that every
// output element is computed by exactly one thread with a fixed order of
// summation, which makes the results bit-identical whatever the thread
// count. Gradients of parameters are accumulated (+=), so that micro-batches
// can add into the same buffers; gradients of activations are overwritten
// unless a kernel says otherwise.

// MatMulBackward is the backward pass of out[n, m] = x[n, k] @ w + bias for
// w in the [in, out] layout (w.Rows = k, w.Cols = m). Given dy = dL/dout it
// sets dx = dy @ w^T and accumulates dw += x^T @ dy and db += the column
// sums of dy. dx and db may be nil to skip them.
//
// The products run on the forward kernels, which are the fast ones: dx is
// MatMulT with w read as [out, in], and x^T @ dy is MatMul with x
// transposed, added to dw afterwards.
func MatMulBackward(dx, dw, db, dy, x []float32, n int, w *Mat) {
	k, m := w.Rows, w.Cols
	_ = dy[n*m-1]
	_ = x[n*k-1]
	_ = dw[k*m-1]
	if dx != nil {
		MatMulT(dx, dy, n, w)
	}
	if !active().simd {
		// The portable kernels are faster at accumulating in place.
		Parallel(k, 4, func(lo, hi int) {
			matMulGradWRef(dw, dy, x, n, k, m, lo, hi)
		})
	} else {
		matMulGradW(dw, dy, x, n, k, m)
	}
	if db != nil {
		Parallel(m, 64, func(lo, hi int) {
			colSumRef(db, dy, n, m, lo, hi)
		})
	}
}

// matMulGradW accumulates dw[k, m] += x^T @ dy with the forward kernel,
// adding into dw in place.
func matMulGradW(dw, dy, x []float32, n, k, m int) {
	xt := getScratch(k * n)
	transpose(xt, x, n, k)
	dyMat := Mat{Rows: n, Cols: m, DType: F32, F32: dy[:n*m]}
	matMulAcc(dw[:k*m], xt, k, &dyMat)
	putScratch(xt)
}

// MatMulTBackward is the backward pass of out[n, m] = x[n, k] @ w^T for w
// in the [out, in] layout (w.Rows = m, w.Cols = k), as when the token
// embedding doubles as the output projection. It sets dx = dy @ w and
// accumulates dw += dy^T @ x. dx may be nil.
func MatMulTBackward(dx, dw, dy, x []float32, n int, w *Mat) {
	m, k := w.Rows, w.Cols
	_ = dy[n*m-1]
	_ = x[n*k-1]
	_ = dw[m*k-1]
	if !active().simd {
		// The portable kernels: by rows of dx and of dw, in place.
		if dx != nil {
			Parallel(n, 1, func(lo, hi int) {
				matMulTGradXRef(dx, dy, w.F32, n, k, m, lo, hi)
			})
		}
		Parallel(m, 4, func(lo, hi int) {
			matMulTGradWRef(dw, dy, x, n, k, m, lo, hi)
		})
		return
	}
	if dx != nil {
		// dx = dy @ w is MatMul with w read as an [in, out] matrix.
		MatMul(dx, dy, n, w, nil)
	}
	// dw += dy^T @ x, added into dw in place by the GEMM: dy is
	// transposed (n x m, a third the size of dw for GPT-2's vocabulary and
	// a batch of 256), and x is the narrow "weight" it packs.
	dyt := getScratch(m * n)
	transpose(dyt, dy, n, m)
	xMat := Mat{Rows: n, Cols: k, DType: F32, F32: x[:n*k]}
	matMulAcc(dw[:m*k], dyt, m, &xMat)
	putScratch(dyt)
}

// transpose sets dst[c, r] = src[r, c] for src of r rows and c columns, in
// blocks that keep both sides in cache.
func transpose(dst, src []float32, r, c int) {
	const blk = 32
	Parallel((c+blk-1)/blk, 1, func(lo, hi int) {
		for j0 := lo * blk; j0 < min(hi*blk, c); j0 += blk {
			j1 := min(j0+blk, c)
			for i0 := 0; i0 < r; i0 += blk {
				i1 := min(i0+blk, r)
				for i := i0; i < i1; i++ {
					row := src[i*c : (i+1)*c]
					for j := j0; j < j1; j++ {
						dst[j*r+i] = row[j]
					}
				}
			}
		}
	})
}

// Scratch buffers for the backward products, reused across calls: the
// largest (the tied embedding's gradient) is vocab x n_embd.
var (
	scratchMu   sync.Mutex
	scratchFree [][]float32
)

func getScratch(n int) []float32 {
	scratchMu.Lock()
	defer scratchMu.Unlock()
	for i, b := range scratchFree {
		if cap(b) >= n {
			scratchFree = append(scratchFree[:i], scratchFree[i+1:]...)
			return b[:n]
		}
	}
	return make([]float32, n)
}

func putScratch(b []float32) {
	scratchMu.Lock()
	defer scratchMu.Unlock()
	if len(scratchFree) < 4 {
		scratchFree = append(scratchFree, b)
	}
}

// LayerNormStats computes the mean and reciprocal standard deviation of
// each of the n rows of x (length c), as LayerNorm normalises them; the
// backward pass needs them.
func LayerNormStats(mean, rstd, x []float32, n, c int, eps float32) {
	Parallel(n, 16, func(lo, hi int) {
		layerNormStatsRef(mean, rstd, x, c, eps, lo, hi)
	})
}

// LayerNormBackward is the backward pass of out = LayerNorm(x; g, b). Given
// dy it accumulates dx += dL/dx (the input is a residual stream, whose
// gradient gathers several contributions), dg += dL/dg and db += dL/db.
func LayerNormBackward(dx, dg, db, dy, x, mean, rstd, g []float32, n, c int) {
	_ = dy[n*c-1]
	Parallel(n, 16, func(lo, hi int) {
		layerNormGradXRef(dx, dy, x, mean, rstd, g, c, lo, hi)
	})
	Parallel(c, 16, func(lo, hi int) {
		layerNormGradGBRef(dg, db, dy, x, mean, rstd, n, c, lo, hi)
	})
}

// GELUBackward sets dx = dy * GELU'(x) for the tanh form of GELU. dx may
// alias dy, which is how the gradient of the MLP's second matmul becomes
// that of its first in place.
func GELUBackward(dx, x, dy []float32) {
	_ = dx[len(x)-1]
	_ = dy[len(x)-1]
	im := active()
	Parallel(len(x), 1024, func(lo, hi int) {
		nv := 0
		if im.simd {
			nv = (hi - lo) / im.lanes * im.lanes
		}
		if nv > 0 {
			im.geluBack(&dx[lo], &x[lo], &dy[lo], nv)
		}
		geluBackwardRef(dx[lo+nv:hi], x[lo+nv:hi], dy[lo+nv:hi])
	})
}

// AttentionForward computes causal multi-head self-attention over b
// sequences of t positions for training, keeping the attention
// probabilities for the backward pass. qkv is [b*t, 3*c] (queries, keys,
// values in that order, head h in columns h*hs..(h+1)*hs of each third),
// out is [b*t, c], and probs is [b, nHead, t, t] (row i holds the
// probabilities of positions 0..i; the rest are set to zero).
func AttentionForward(out, probs, qkv []float32, b, t, nHead, hs int) {
	c := nHead * hs
	_ = qkv[b*t*3*c-1]
	_ = out[b*t*c-1]
	_ = probs[b*nHead*t*t-1]
	im := active()
	vec := im.simd && hs%im.lanes == 0
	Parallel(b*nHead*t, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			i := r % t
			bh := r / t
			if vec {
				attentionForwardRow(im, out, probs, qkv, bh/nHead, bh%nHead, i, t, nHead, hs)
				continue
			}
			attentionForwardRowRef(out, probs, qkv, bh/nHead, bh%nHead, i, t, nHead, hs)
		}
	})
}

// attentionForwardRow is attentionForwardRowRef on the vector kernels, by
// the same steps as the inference kernel's: lane-dot scores, scaled, an
// in-place softmax, and the probabilities times the values in order.
func attentionForwardRow(im *impl, out, probs, qkv []float32, bi, h, i, t, nHead, hs int) {
	c := nHead * hs
	ld := 3 * c
	base := bi * t
	p := probs[((bi*nHead+h)*t+i)*t : ((bi*nHead+h)*t+i+1)*t]
	s := p[:i+1]
	im.dot[F32](&s[0], &qkv[(base+i)*ld+h*hs], unsafe.Pointer(&qkv[base*ld+c+h*hs]), 4*ld, hs, i+1, nil, 0)
	scaleBy(im, s, float32(1/math.Sqrt(float64(hs))))
	sum := expSum(im, s, maxOf(im, s))
	scaleBy(im, s, 1/sum)
	clear(p[i+1:])
	attnSum(im, out[(base+i)*c+h*hs:(base+i)*c+(h+1)*hs], s, &qkv[base*ld+2*c+h*hs], 4*ld)
}

// attnSum sets o (a multiple of the lane count long) to the sum over p, in
// order, of a[p] times the row of v that starts ldv bytes after the last.
func attnSum(im *impl, o, a []float32, v *float32, ldv int) {
	n := len(a)
	d := 0
	for ; d+4*im.lanes <= len(o); d += 4 * im.lanes {
		im.attnAccum4(&o[d], &a[0], n, (*float32)(unsafe.Add(unsafe.Pointer(v), 4*d)), ldv, 1)
	}
	for ; d+2*im.lanes <= len(o); d += 2 * im.lanes {
		im.attnAccum2(&o[d], &a[0], n, (*float32)(unsafe.Add(unsafe.Pointer(v), 4*d)), ldv, 1)
	}
	for ; d < len(o); d += im.lanes {
		im.attnAccum1(&o[d], &a[0], n, (*float32)(unsafe.Add(unsafe.Pointer(v), 4*d)), ldv, 1)
	}
}

// AttentionBackward is the backward pass of AttentionForward. Given dout
// ([b*t, c]) it sets dqkv ([b*t, 3*c]).
func AttentionBackward(dqkv, dout, qkv, probs []float32, b, t, nHead, hs int) {
	c := nHead * hs
	_ = qkv[b*t*3*c-1]
	_ = dqkv[b*t*3*c-1]
	_ = dout[b*t*c-1]
	_ = probs[b*nHead*t*t-1]
	// One (sequence, head) pair owns the q, k and v columns of its head in
	// its sequence's rows, so pairs never write the same element.
	im := active()
	if im.simd && hs%im.lanes == 0 {
		Parallel(b*nHead, 1, func(lo, hi int) {
			buf := getScratch(3 * t * t)
			for bh := lo; bh < hi; bh++ {
				attentionBackward(im, dqkv, dout, qkv, probs, buf, bh/nHead, bh%nHead, t, nHead, hs)
			}
			putScratch(buf)
		})
		return
	}
	Parallel(b*nHead, 1, func(lo, hi int) {
		drow := make([]float32, t)
		for bh := lo; bh < hi; bh++ {
			attentionBackwardRef(dqkv, dout, qkv, probs, drow, bh/nHead, bh%nHead, t, nHead, hs)
		}
	})
}

// attentionBackward is attentionBackwardRef on the vector kernels, as
// products of whole matrices: with P the probabilities and dS the score
// gradients (both [t, t], lower triangular), dq = dS K, dk = dS^T Q and
// dv = P^T dout, each output a sum over positions in order. The
// transposes of P and dS make the last two sums run along rows. buf is
// scratch of 3*t*t.
func attentionBackward(im *impl, dqkv, dout, qkv, probs, buf []float32, bi, h, t, nHead, hs int) {
	c := nHead * hs
	ld := 3 * c
	base := bi * t
	scale := float32(1 / math.Sqrt(float64(hs)))
	P := probs[(bi*nHead+h)*t*t : (bi*nHead+h+1)*t*t]
	dS, pT, dST := buf[:t*t], buf[t*t:2*t*t], buf[2*t*t:3*t*t]
	q0, k0, v0 := base*ld+h*hs, base*ld+c+h*hs, base*ld+2*c+h*hs
	for i := 0; i < t; i++ {
		p := P[i*t : i*t+i+1]
		ds := dS[i*t : i*t+i+1]
		// d prob[j] = dout_i . v_j, into ds for now.
		im.dot[F32](&ds[0], &dout[(base+i)*c+h*hs], unsafe.Pointer(&qkv[v0]), 4*ld, hs, i+1, nil, 0)
		// Softmax backward: d score[j] = prob[j] * (d prob[j] - sum_k prob[k] d prob[k]).
		var dot float32
		for j, a := range p {
			dot += a * ds[j]
		}
		for j, a := range p {
			ds[j] = a * (ds[j] - dot) * scale
		}
		attnSum(im, dqkv[(base+i)*ld+h*hs:(base+i)*ld+(h+1)*hs], ds, &qkv[k0], 4*ld)
	}
	transposeLower(pT, P, t)
	transposeLower(dST, dS, t)
	for j := 0; j < t; j++ {
		r := (base + j) * ld
		attnSum(im, dqkv[r+c+h*hs:r+c+(h+1)*hs], dST[j*t+j:(j+1)*t], &qkv[q0+j*ld], 4*ld)
		attnSum(im, dqkv[r+2*c+h*hs:r+2*c+(h+1)*hs], pT[j*t+j:(j+1)*t], &dout[(base+j)*c+h*hs], 4*c)
	}
}

// transposeLower sets dst[j, i] = src[i, j] for the lower triangle
// (i >= j) of the t x t matrix src, in blocks that stay in cache.
func transposeLower(dst, src []float32, t int) {
	const blk = 16
	for i0 := 0; i0 < t; i0 += blk {
		i1 := min(i0+blk, t)
		for j0 := 0; j0 < i1; j0 += blk {
			j1 := min(j0+blk, t)
			for i := i0; i < i1; i++ {
				row := src[i*t : i*t+min(j1, i+1)]
				for j := j0; j < len(row); j++ {
					dst[j*t+i] = row[j]
				}
			}
		}
	}
}

// CrossEntropy computes, for each of the n rows of logits (length v), the
// loss -log softmax(row)[targets[i]] into losses[i] (float64, so that the
// caller's mean is accurate). If grad is true it overwrites the logits with
// the gradient of scale * sum(losses): scale * (softmax(row) - onehot).
// The logits are needed only for the loss and its gradient, so fusing the
// two saves a pass over the largest activation of the model.
func CrossEntropy(losses []float64, logits []float32, targets []int, n, v int, scale float32, grad bool) {
	_ = logits[n*v-1]
	_ = targets[n-1]
	_ = losses[n-1]
	im := active()
	Parallel(n, 1, func(lo, hi int) {
		var buf []float32
		if im.simd && !grad {
			buf = getScratch(ceChunk)
			defer putScratch(buf)
		}
		for i := lo; i < hi; i++ {
			row := logits[i*v : (i+1)*v]
			if !im.simd {
				losses[i] = crossEntropyRowRef(row, targets[i], scale, grad)
				continue
			}
			losses[i] = crossEntropyRow(im, row, buf, targets[i], scale, grad)
		}
	})
}

// ceChunk is how many logits the vector cross-entropy exponentiates at a
// time: each chunk's float32 lane-tree sum is added to the row's float64
// sum, so that a 50k-wide row loses no accuracy to a long float32 sum.
const ceChunk = 1024

// crossEntropyRow is crossEntropyRowRef on the vector kernels. Without
// grad the exponentials go to buf (ceChunk long) instead of the row, by the
// same arithmetic, so that the loss is the same either way.
func crossEntropyRow(im *impl, row, buf []float32, target int, scale float32, grad bool) float64 {
	maxv := maxOf(im, row)
	logit := row[target]
	var sum float64
	for j0 := 0; j0 < len(row); j0 += ceChunk {
		chunk := row[j0:min(j0+ceChunk, len(row))]
		if !grad {
			chunk = buf[:copy(buf, chunk)]
		}
		sum += float64(expSum(im, chunk, maxv))
	}
	loss := math.Log(sum) + float64(maxv) - float64(logit)
	if grad {
		scaleBy(im, row, float32(1/sum)*scale)
		row[target] -= scale
	}
	return loss
}

// --- plain-Go references ---

// MatMulBackwardRef is the reference for MatMulBackward: the same sums,
// written as plainly as possible.
func MatMulBackwardRef(dx, dw, db, dy, x []float32, n int, w *Mat) {
	k, m := w.Rows, w.Cols
	for i := 0; i < n; i++ {
		for p := 0; p < k; p++ {
			var s float32
			for j := 0; j < m; j++ {
				s += dy[i*m+j] * w.F32[p*m+j]
			}
			if dx != nil {
				dx[i*k+p] = s
			}
		}
	}
	for p := 0; p < k; p++ {
		for j := 0; j < m; j++ {
			s := dw[p*m+j]
			for i := 0; i < n; i++ {
				s += x[i*k+p] * dy[i*m+j]
			}
			dw[p*m+j] = s
		}
	}
	if db != nil {
		for j := 0; j < m; j++ {
			s := db[j]
			for i := 0; i < n; i++ {
				s += dy[i*m+j]
			}
			db[j] = s
		}
	}
}

// MatMulTBackwardRef is the reference for MatMulTBackward.
func MatMulTBackwardRef(dx, dw, dy, x []float32, n int, w *Mat) {
	m, k := w.Rows, w.Cols
	if dx != nil {
		for i := 0; i < n; i++ {
			for p := 0; p < k; p++ {
				var s float32
				for j := 0; j < m; j++ {
					s += dy[i*m+j] * w.F32[j*k+p]
				}
				dx[i*k+p] = s
			}
		}
	}
	for j := 0; j < m; j++ {
		for p := 0; p < k; p++ {
			s := dw[j*k+p]
			for i := 0; i < n; i++ {
				s += dy[i*m+j] * x[i*k+p]
			}
			dw[j*k+p] = s
		}
	}
}

// matMulGradWRef accumulates rows [lo, hi) of dw[k, m] += x^T @ dy. Each
// element sums over i in increasing order, whatever the blocking.
func matMulGradWRef(dw, dy, x []float32, n, k, m, lo, hi int) {
	const colBlock = 512
	for j0 := 0; j0 < m; j0 += colBlock {
		j1 := min(j0+colBlock, m)
		p := lo
		for ; p+4 <= hi; p += 4 {
			w0 := dw[p*m+j0 : p*m+j1]
			w1 := dw[(p+1)*m+j0 : (p+1)*m+j1]
			w2 := dw[(p+2)*m+j0 : (p+2)*m+j1]
			w3 := dw[(p+3)*m+j0 : (p+3)*m+j1]
			for i := 0; i < n; i++ {
				xi := x[i*k+p : i*k+p+4]
				a0, a1, a2, a3 := xi[0], xi[1], xi[2], xi[3]
				d := dy[i*m+j0 : i*m+j1]
				d = d[:len(w0)]
				w1, w2, w3 := w1[:len(d)], w2[:len(d)], w3[:len(d)]
				for j, v := range d {
					w0[j] += a0 * v
					w1[j] += a1 * v
					w2[j] += a2 * v
					w3[j] += a3 * v
				}
			}
		}
		for ; p < hi; p++ {
			w0 := dw[p*m+j0 : p*m+j1]
			for i := 0; i < n; i++ {
				a := x[i*k+p]
				d := dy[i*m+j0 : i*m+j1]
				d = d[:len(w0)]
				for j, v := range d {
					w0[j] += a * v
				}
			}
		}
	}
}

// matMulTGradXRef sets rows [lo, hi) of dx[n, k] = dy[n, m] @ w[m, k],
// summing over j in increasing order; w is read in blocks of rows that
// stay in cache across the rows of dx.
func matMulTGradXRef(dx, dy, w []float32, n, k, m, lo, hi int) {
	clear(dx[lo*k : hi*k])
	jb := max(1, (256<<10)/(4*k))
	for j0 := 0; j0 < m; j0 += jb {
		j1 := min(j0+jb, m)
		for i := lo; i < hi; i++ {
			o := dx[i*k : (i+1)*k]
			d := dy[i*m : (i+1)*m]
			for j := j0; j < j1; j++ {
				a := d[j]
				wr := w[j*k : (j+1)*k]
				wr = wr[:len(o)]
				for p, v := range wr {
					o[p] += a * v
				}
			}
		}
	}
}

// matMulTGradWRef accumulates rows [lo, hi) of dw[m, k] += dy^T @ x.
func matMulTGradWRef(dw, dy, x []float32, n, k, m, lo, hi int) {
	j := lo
	for ; j+4 <= hi; j += 4 {
		w0 := dw[j*k : (j+1)*k]
		w1 := dw[(j+1)*k : (j+2)*k]
		w2 := dw[(j+2)*k : (j+3)*k]
		w3 := dw[(j+3)*k : (j+4)*k]
		for i := 0; i < n; i++ {
			d := dy[i*m+j : i*m+j+4]
			a0, a1, a2, a3 := d[0], d[1], d[2], d[3]
			xi := x[i*k : (i+1)*k]
			xi = xi[:len(w0)]
			w1, w2, w3 := w1[:len(xi)], w2[:len(xi)], w3[:len(xi)]
			for p, v := range xi {
				w0[p] += a0 * v
				w1[p] += a1 * v
				w2[p] += a2 * v
				w3[p] += a3 * v
			}
		}
	}
	for ; j < hi; j++ {
		w0 := dw[j*k : (j+1)*k]
		for i := 0; i < n; i++ {
			a := dy[i*m+j]
			xi := x[i*k : (i+1)*k]
			xi = xi[:len(w0)]
			for p, v := range xi {
				w0[p] += a * v
			}
		}
	}
}

func colSumRef(db, dy []float32, n, m, lo, hi int) {
	for i := 0; i < n; i++ {
		d := dy[i*m+lo : i*m+hi]
		o := db[lo:hi]
		o = o[:len(d)]
		for j, v := range d {
			o[j] += v
		}
	}
}

func layerNormStatsRef(mean, rstd, x []float32, c int, eps float32, lo, hi int) {
	// The same function as layerNormRef uses, so that the statistics are
	// those the forward pass normalised with.
	for i := lo; i < hi; i++ {
		mean[i], rstd[i] = layerNormStatsRowRef(x[i*c:(i+1)*c], eps)
	}
}

// layerNormGradXRef accumulates rows [lo, hi) of dx. With xhat the
// normalised input and dn = g * dy:
// dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)).
func layerNormGradXRef(dx, dy, x, mean, rstd, g []float32, c, lo, hi int) {
	for i := lo; i < hi; i++ {
		xi := x[i*c : (i+1)*c]
		di := dy[i*c : (i+1)*c]
		mu, rs := mean[i], rstd[i]
		var sumDn, sumDnX float32
		for j, v := range xi {
			dn := g[j] * di[j]
			sumDn += dn
			sumDnX += dn * (v - mu) * rs
		}
		sumDn /= float32(c)
		sumDnX /= float32(c)
		o := dx[i*c : (i+1)*c]
		for j, v := range xi {
			xhat := (v - mu) * rs
			o[j] += (g[j]*di[j] - sumDn - xhat*sumDnX) * rs
		}
	}
}

// layerNormGradGBRef accumulates columns [lo, hi) of dg and db.
func layerNormGradGBRef(dg, db, dy, x, mean, rstd []float32, n, c, lo, hi int) {
	for i := 0; i < n; i++ {
		mu, rs := mean[i], rstd[i]
		xi := x[i*c+lo : i*c+hi]
		di := dy[i*c+lo : i*c+hi]
		for j, v := range xi {
			dg[lo+j] += (v - mu) * rs * di[j]
			db[lo+j] += di[j]
		}
	}
}

func geluBackwardRef(dx, x, dy []float32) {
	for i, v := range x {
		// With s = 1/(1+exp(-2u)): 0.5(1+tanh u) = s and 1-tanh^2 u =
		// 4s(1-s), which unlike 1+tanh u loses no digits for negative x;
		// float32 accuracy is plenty for a gradient.
		u := geluScale * (v + 0.044715*v*v*v)
		s := 1 / (1 + expf(-2*u))
		d := s + 2*geluScale*v*s*(1-s)*(1+3*0.044715*v*v)
		dx[i] = d * dy[i]
	}
}

// attentionForwardRowRef computes query position i of head h in sequence
// bi: its probabilities and its output.
func attentionForwardRowRef(out, probs, qkv []float32, bi, h, i, t, nHead, hs int) {
	c := nHead * hs
	ld := 3 * c
	base := bi * t
	qi := qkv[(base+i)*ld+h*hs : (base+i)*ld+(h+1)*hs]
	p := probs[((bi*nHead+h)*t+i)*t : ((bi*nHead+h)*t+i+1)*t]
	scale := float32(1 / math.Sqrt(float64(hs)))
	maxv := float32(math.Inf(-1))
	for j := 0; j <= i; j++ {
		kj := qkv[(base+j)*ld+c+h*hs : (base+j)*ld+c+(h+1)*hs]
		var s float32
		for d := range qi {
			s += qi[d] * kj[d]
		}
		s *= scale
		p[j] = s
		maxv = max(maxv, s)
	}
	var sum float32
	for j := 0; j <= i; j++ {
		e := float32(math.Exp(float64(p[j] - maxv)))
		p[j] = e
		sum += e
	}
	inv := 1 / sum
	o := out[(base+i)*c+h*hs : (base+i)*c+(h+1)*hs]
	clear(o)
	for j := 0; j <= i; j++ {
		a := p[j] * inv
		p[j] = a
		vj := qkv[(base+j)*ld+2*c+h*hs : (base+j)*ld+2*c+(h+1)*hs]
		for d := range o {
			o[d] += a * vj[d]
		}
	}
	clear(p[i+1:])
}

// attentionBackwardRef sets the q, k and v gradients of head h in
// sequence bi. drow is scratch of length t.
func attentionBackwardRef(dqkv, dout, qkv, probs, drow []float32, bi, h, t, nHead, hs int) {
	c := nHead * hs
	ld := 3 * c
	base := bi * t
	scale := float32(1 / math.Sqrt(float64(hs)))
	for i := 0; i < t; i++ {
		r := (base + i) * ld
		clear(dqkv[r+h*hs : r+(h+1)*hs])
		clear(dqkv[r+c+h*hs : r+c+(h+1)*hs])
		clear(dqkv[r+2*c+h*hs : r+2*c+(h+1)*hs])
	}
	for i := 0; i < t; i++ {
		p := probs[((bi*nHead+h)*t+i)*t : ((bi*nHead+h)*t+i)*t+i+1]
		doi := dout[(base+i)*c+h*hs : (base+i)*c+(h+1)*hs]
		// d prob[j] = dout_i . v_j, and v_j gets prob[j] * dout_i.
		dp := drow[:i+1]
		for j := range dp {
			vr := (base+j)*ld + 2*c + h*hs
			vj := qkv[vr : vr+hs]
			dvj := dqkv[vr : vr+hs]
			a := p[j]
			var s float32
			for d, o := range doi {
				s += o * vj[d]
				dvj[d] += a * o
			}
			dp[j] = s
		}
		// Softmax backward: d score[j] = prob[j] * (d prob[j] - sum_k prob[k] d prob[k]).
		var dot float32
		for j, a := range p {
			dot += a * dp[j]
		}
		qr := (base+i)*ld + h*hs
		qi := qkv[qr : qr+hs]
		dqi := dqkv[qr : qr+hs]
		for j, a := range p {
			ds := a * (dp[j] - dot) * scale
			if ds == 0 {
				continue
			}
			kr := (base+j)*ld + c + h*hs
			kj := qkv[kr : kr+hs]
			dkj := dqkv[kr : kr+hs]
			for d := range dqi {
				dqi[d] += ds * kj[d]
				dkj[d] += ds * qi[d]
			}
		}
	}
}

func crossEntropyRowRef(row []float32, target int, scale float32, grad bool) float64 {
	maxv := float32(math.Inf(-1))
	for _, v := range row {
		maxv = max(maxv, v)
	}
	logit := row[target]
	// The exponentials are float32 (expf), summed in float64: the loss is
	// then accurate to float32 rounding, and the largest activation of the
	// model costs one fast pass instead of float64 math.Exp calls.
	var sum float64
	if grad {
		for j, v := range row {
			e := expf(v - maxv)
			row[j] = e
			sum += float64(e)
		}
	} else {
		for _, v := range row {
			sum += float64(expf(v - maxv))
		}
	}
	loss := math.Log(sum) + float64(maxv) - float64(logit)
	if grad {
		inv := float32(1/sum) * scale
		for j := range row {
			row[j] *= inv
		}
		row[target] -= scale
	}
	return loss
}

// expf is exp for float32 (Cephes' expf: a degree-5 polynomial after
// reducing by multiples of ln 2), accurate to about one unit in the last
// place. Results below the smallest normal float32 (1.2e-38) are flushed
// to zero, which a softmax never notices.
func expf(x float32) float32 {
	if x < -87.33654 {
		return 0
	}
	if x > 88.72283 { // not reached from a softmax, but keep it correct
		return float32(math.Inf(1))
	}
	// k = round(x / ln 2), half away from zero: then |r| <= ln(2)/2.
	t := x * 1.44269504088896341
	if t < 0 {
		t -= 0.5
	} else {
		t += 0.5
	}
	k := float32(int32(t))
	r := x - k*0.693359375
	r -= k * -2.12194440e-4
	z := r * r
	y := ((((1.9875691500e-4*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	y = y*z + r + 1
	return y * math.Float32frombits(uint32(int32(k)+127)<<23)
}
