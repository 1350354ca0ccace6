package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// The backward kernels are checked against central finite differences of
// float64 forward passes: for a random r, L = sum(r * f(inputs)), and each
// kernel's gradient of L must match (L(x+h) - L(x-h)) / 2h.

func randSlice(rng *rand.Rand, n int, scale float64) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(rng.NormFloat64() * scale)
	}
	return s
}

func to64(x []float32) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(v)
	}
	return y
}

// numGrad returns dL/dx by central differences, x changed in place and
// restored.
func numGrad(x []float64, loss func() float64) []float64 {
	const h = 1e-6
	g := make([]float64, len(x))
	for i := range x {
		old := x[i]
		x[i] = old + h
		lp := loss()
		x[i] = old - h
		lm := loss()
		x[i] = old
		g[i] = (lp - lm) / (2 * h)
	}
	return g
}

// checkGrad compares an analytic float32 gradient with a numeric one,
// relative to the largest entry.
func checkGrad(t *testing.T, name string, got []float32, want []float64, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(v))
	}
	if scale == 0 {
		t.Fatalf("%s: numeric gradient is all zero; the check would prove nothing", name)
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - want[i]); d > tol*scale {
			t.Fatalf("%s[%d] = %g, finite differences give %g (|diff| %g > %g)", name, i, got[i], want[i], d, tol*scale)
		}
	}
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func matmul64(x, w, b []float64, n, k, m int) []float64 {
	out := make([]float64, n*m)
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			var s float64
			if b != nil {
				s = b[j]
			}
			for p := 0; p < k; p++ {
				s += x[i*k+p] * w[p*m+j]
			}
			out[i*m+j] = s
		}
	}
	return out
}

func TestMatMulBackwardFiniteDiff(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(1, 2))
		n, k, m := 5, 7, 9
		x, w, b := randSlice(rng, n*k, 1), randSlice(rng, k*m, 1), randSlice(rng, m, 1)
		r := randSlice(rng, n*m, 1)
		x64, w64, b64, r64 := to64(x), to64(w), to64(b), to64(r)
		loss := func() float64 { return dot64(r64, matmul64(x64, w64, b64, n, k, m)) }

		dx, dw, db := make([]float32, n*k), make([]float32, k*m), make([]float32, m)
		wm := NewMat(k, m, w)
		MatMulBackward(dx, dw, db, r, x, n, &wm)
		checkGrad(t, "dx", dx, numGrad(x64, loss), 1e-5)
		checkGrad(t, "dw", dw, numGrad(w64, loss), 1e-5)
		checkGrad(t, "db", db, numGrad(b64, loss), 1e-5)
	})
}

func TestMatMulTBackwardFiniteDiff(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		n, k, m := 6, 5, 11
		x, w := randSlice(rng, n*k, 1), randSlice(rng, m*k, 1)
		r := randSlice(rng, n*m, 1)
		x64, w64, r64 := to64(x), to64(w), to64(r)
		loss := func() float64 {
			var s float64
			for i := 0; i < n; i++ {
				for j := 0; j < m; j++ {
					var d float64
					for p := 0; p < k; p++ {
						d += x64[i*k+p] * w64[j*k+p]
					}
					s += r64[i*m+j] * d
				}
			}
			return s
		}
		dx, dw := make([]float32, n*k), make([]float32, m*k)
		wm := NewMat(m, k, w)
		MatMulTBackward(dx, dw, r, x, n, &wm)
		checkGrad(t, "dx", dx, numGrad(x64, loss), 1e-5)
		checkGrad(t, "dw", dw, numGrad(w64, loss), 1e-5)
	})
}

func layerNorm64(x, g, b []float64, n, c int, eps float64) []float64 {
	out := make([]float64, n*c)
	for i := 0; i < n; i++ {
		xi := x[i*c : (i+1)*c]
		var mean, v float64
		for _, a := range xi {
			mean += a
		}
		mean /= float64(c)
		for _, a := range xi {
			v += (a - mean) * (a - mean)
		}
		v /= float64(c)
		rs := 1 / math.Sqrt(v+eps)
		for j, a := range xi {
			out[i*c+j] = (a-mean)*rs*g[j] + b[j]
		}
	}
	return out
}

func TestLayerNormBackwardFiniteDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	n, c := 4, 16
	const eps = 1e-5
	x, g, b := randSlice(rng, n*c, 1), randSlice(rng, c, 1), randSlice(rng, c, 1)
	r := randSlice(rng, n*c, 1)
	x64, g64, b64, r64 := to64(x), to64(g), to64(b), to64(r)
	loss := func() float64 { return dot64(r64, layerNorm64(x64, g64, b64, n, c, eps)) }

	mean, rstd := make([]float32, n), make([]float32, n)
	LayerNormStats(mean, rstd, x, n, c, eps)
	// dx accumulates, so start from a known non-zero value.
	dx := randSlice(rng, n*c, 1)
	dx0 := slices.Clone(dx)
	dg, db := make([]float32, c), make([]float32, c)
	LayerNormBackward(dx, dg, db, r, x, mean, rstd, g, n, c)
	for i := range dx {
		dx[i] -= dx0[i]
	}
	checkGrad(t, "dx", dx, numGrad(x64, loss), 1e-4)
	checkGrad(t, "dg", dg, numGrad(g64, loss), 1e-5)
	checkGrad(t, "db", db, numGrad(b64, loss), 1e-5)
}

func TestGELUBackwardFiniteDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	x := randSlice(rng, 64, 2)
	r := randSlice(rng, 64, 1)
	x64, r64 := to64(x), to64(r)
	loss := func() float64 {
		var s float64
		for i, u := range x64 {
			s += r64[i] * 0.5 * u * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(u+0.044715*u*u*u)))
		}
		return s
	}
	dx := make([]float32, len(x))
	GELUBackward(dx, x, r)
	checkGrad(t, "dx", dx, numGrad(x64, loss), 1e-5)
	// In place, as the training backward pass uses it.
	d := slices.Clone(r)
	GELUBackward(d, x, d)
	if !slices.Equal(d, dx) {
		t.Fatal("GELUBackward in place differs from out of place")
	}
}

func attention64(qkv []float64, b, t, nHead, hs int) []float64 {
	c := nHead * hs
	out := make([]float64, b*t*c)
	for bi := 0; bi < b; bi++ {
		for h := 0; h < nHead; h++ {
			for i := 0; i < t; i++ {
				s := make([]float64, i+1)
				maxv := math.Inf(-1)
				for j := 0; j <= i; j++ {
					for d := 0; d < hs; d++ {
						s[j] += qkv[(bi*t+i)*3*c+h*hs+d] * qkv[(bi*t+j)*3*c+c+h*hs+d]
					}
					s[j] /= math.Sqrt(float64(hs))
					maxv = max(maxv, s[j])
				}
				var sum float64
				for j := range s {
					s[j] = math.Exp(s[j] - maxv)
					sum += s[j]
				}
				for j := range s {
					for d := 0; d < hs; d++ {
						out[(bi*t+i)*c+h*hs+d] += s[j] / sum * qkv[(bi*t+j)*3*c+2*c+h*hs+d]
					}
				}
			}
		}
	}
	return out
}

func TestAttentionFiniteDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	b, T, nHead, hs := 2, 5, 2, 4
	c := nHead * hs
	qkv := randSlice(rng, b*T*3*c, 1)
	r := randSlice(rng, b*T*c, 1)
	qkv64, r64 := to64(qkv), to64(r)

	out := make([]float32, b*T*c)
	probs := make([]float32, b*nHead*T*T)
	for i := range probs {
		probs[i] = float32(math.NaN()) // must be overwritten, masked entries too
	}
	AttentionForward(out, probs, qkv, b, T, nHead, hs)
	want := attention64(qkv64, b, T, nHead, hs)
	for i := range out {
		if d := math.Abs(float64(out[i]) - want[i]); d > 1e-5 {
			t.Fatalf("out[%d] = %g, want %g", i, out[i], want[i])
		}
	}
	for i, p := range probs {
		if math.IsNaN(float64(p)) {
			t.Fatalf("probs[%d] not written", i)
		}
	}

	// Attention through its own kernel must agree with the inference kernel.
	for bi := 0; bi < b; bi++ {
		q := make([]float32, T*c)
		for i := 0; i < T; i++ {
			copy(q[i*c:(i+1)*c], qkv[(bi*T+i)*3*c:])
		}
		inf := make([]float32, T*c)
		kc := keyCache(qkv[bi*T*3*c+c:], T, c, 3*c)
		Attention(inf, q, kc, qkv[bi*T*3*c+2*c:], T, 0, nHead, hs, 3*c)
		for i := range inf {
			if d := math.Abs(float64(inf[i] - out[bi*T*c+i])); d > 1e-6 {
				t.Fatalf("seq %d: AttentionForward %g, Attention %g", bi, out[bi*T*c+i], inf[i])
			}
		}
	}

	dqkv := randSlice(rng, len(qkv), 1) // must be overwritten
	AttentionBackward(dqkv, r, qkv, probs, b, T, nHead, hs)
	loss := func() float64 { return dot64(r64, attention64(qkv64, b, T, nHead, hs)) }
	checkGrad(t, "dqkv", dqkv, numGrad(qkv64, loss), 1e-4)
}

func TestCrossEntropyFiniteDiff(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	n, v := 3, 10
	logits := randSlice(rng, n*v, 3)
	targets := []int{0, 9, 4}
	l64 := to64(logits)
	const scale = 0.25
	loss := func() float64 {
		var s float64
		for i := 0; i < n; i++ {
			row := l64[i*v : (i+1)*v]
			var sum float64
			for _, a := range row {
				sum += math.Exp(a)
			}
			s += math.Log(sum) - row[targets[i]]
		}
		return s * scale
	}
	want := loss() / scale

	losses := make([]float64, n)
	noGrad := slices.Clone(logits)
	CrossEntropy(losses, noGrad, targets, n, v, scale, false)
	if !slices.Equal(noGrad, logits) {
		t.Fatal("CrossEntropy without grad changed the logits")
	}
	var got float64
	for _, l := range losses {
		got += l
	}
	if math.Abs(got-want) > 1e-5*want {
		t.Fatalf("loss %g, want %g", got, want)
	}
	d := slices.Clone(logits)
	CrossEntropy(losses, d, targets, n, v, scale, true)
	var got2 float64
	for _, l := range losses {
		got2 += l
	}
	if got2 != got {
		t.Fatalf("loss with grad %g, without %g", got2, got)
	}
	checkGrad(t, "dlogits", d, numGrad(l64, loss), 1e-5)
}

// The kernels must equal their references closely and give bit-identical
// results whatever the thread count, so that training runs reproduce.
func TestBackwardDeterministicAcrossThreads(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		defer SetThreads(0)
		rng := rand.New(rand.NewPCG(13, 14))
		n, k, m := 37, 70, 130
		x, w, dy := randSlice(rng, n*k, 1), randSlice(rng, k*m, 1), randSlice(rng, n*m, 1)
		wm := NewMat(k, m, w)
		wt := NewMat(m, k, randSlice(rng, m*k, 1))
		b, T, nHead, hs := 3, 9, 3, 5
		c := nHead * hs
		qkv, dout := randSlice(rng, b*T*3*c, 1), randSlice(rng, b*T*c, 1)
		g := randSlice(rng, k, 1)

		run := func() [][]float32 {
			dx, dw, db := make([]float32, n*k), make([]float32, k*m), make([]float32, m)
			MatMulBackward(dx, dw, db, dy, x, n, &wm)
			tdx, tdw := make([]float32, n*m), make([]float32, m*k)
			MatMulTBackward(tdx, tdw, dy[:n*m], x[:n*k], n, &wt)
			out, probs, dqkv := make([]float32, b*T*c), make([]float32, b*nHead*T*T), make([]float32, b*T*3*c)
			AttentionForward(out, probs, qkv, b, T, nHead, hs)
			AttentionBackward(dqkv, dout, qkv, probs, b, T, nHead, hs)
			mean, rstd := make([]float32, n), make([]float32, n)
			LayerNormStats(mean, rstd, x, n, k, 1e-5)
			lx, lg, lb := make([]float32, n*k), make([]float32, k), make([]float32, k)
			LayerNormBackward(lx, lg, lb, x, x, mean, rstd, g, n, k)
			return [][]float32{dx, dw, db, tdx, tdw, out, probs, dqkv, lx, lg, lb}
		}
		SetThreads(1)
		want := run()
		for _, th := range []int{2, 3, 7} {
			SetThreads(th)
			got := run()
			for i := range got {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("threads %d: output %d differs from the single-threaded run", th, i)
				}
			}
		}

		// And against the plain references.
		rdx, rdw, rdb := make([]float32, n*k), make([]float32, k*m), make([]float32, m)
		MatMulBackwardRef(rdx, rdw, rdb, dy, x, n, &wm)
		rtdx, rtdw := make([]float32, n*m), make([]float32, m*k)
		MatMulTBackwardRef(rtdx, rtdw, dy[:n*m], x[:n*k], n, &wt)
		for i, pair := range [][2][]float32{{want[0], rdx}, {want[1], rdw}, {want[2], rdb}, {want[3], rtdx}, {want[4], rtdw}} {
			for j := range pair[0] {
				if d := math.Abs(float64(pair[0][j] - pair[1][j])); d > 1e-4*(1+math.Abs(float64(pair[1][j]))) {
					t.Fatalf("output %d[%d] = %g, reference %g", i, j, pair[0][j], pair[1][j])
				}
			}
		}
	})
}

func TestExpf(t *testing.T) {
	var worst float64
	for i := 0; i <= 2_000_000; i++ {
		x := float32(-104 + 104*float64(i)/2_000_000)
		got, want := float64(expf(x)), math.Exp(float64(x))
		if want < 1.2e-38 { // subnormal results are flushed to zero
			if got != 0 && math.Abs(got-want)/want > 2.5e-7 {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		worst = max(worst, math.Abs(got-want)/want)
	}
	if worst > 2.5e-7 {
		t.Fatalf("expf's worst relative error %g", worst)
	}
	if expf(0) != 1 || expf(-200) != 0 {
		t.Fatalf("expf(0) = %g, expf(-200) = %g", expf(0), expf(-200))
	}
}

// forEachImpl runs fn under each kernel implementation this machine has,
// as the backward kernels take different paths in each.
func forEachImpl(t *testing.T, fn func(t *testing.T)) {
	defer SetImpl(Impl())
	for _, name := range Impls() {
		t.Run(name, func(t *testing.T) {
			if err := SetImpl(name); err != nil {
				t.Fatal(err)
			}
			fn(t)
		})
	}
}

// The vector attention and cross-entropy kernels must agree with their
// references on shapes that take the vector paths (heads a multiple of
// the lane count wide, rows longer than a chunk of the cross-entropy).
func TestTrainingKernelsMatchReference(t *testing.T) {
	forEachImpl(t, func(t *testing.T) {
		rng := rand.New(rand.NewPCG(15, 16))
		for _, hs := range []int{16, 32, 64} {
			b, T, nHead := 2, 37, 3
			c := nHead * hs
			qkv, dout := randSlice(rng, b*T*3*c, 1), randSlice(rng, b*T*c, 1)
			out, probs := make([]float32, b*T*c), make([]float32, b*nHead*T*T)
			AttentionForward(out, probs, qkv, b, T, nHead, hs)
			dqkv := randSlice(rng, b*T*3*c, 1) // must be overwritten
			AttentionBackward(dqkv, dout, qkv, probs, b, T, nHead, hs)

			rout, rprobs, rdqkv := make([]float32, b*T*c), make([]float32, b*nHead*T*T), make([]float32, b*T*3*c)
			for bh := 0; bh < b*nHead; bh++ {
				for i := 0; i < T; i++ {
					attentionForwardRowRef(rout, rprobs, qkv, bh/nHead, bh%nHead, i, T, nHead, hs)
				}
			}
			drow := make([]float32, T)
			for bh := 0; bh < b*nHead; bh++ {
				attentionBackwardRef(rdqkv, dout, qkv, rprobs, drow, bh/nHead, bh%nHead, T, nHead, hs)
			}
			for _, pair := range []struct {
				name      string
				got, want []float32
			}{{"out", out, rout}, {"probs", probs, rprobs}, {"dqkv", dqkv, rdqkv}} {
				for i := range pair.want {
					if d := math.Abs(float64(pair.got[i] - pair.want[i])); d > 1e-5*(1+math.Abs(float64(pair.want[i]))) {
						t.Fatalf("hs %d: %s[%d] = %g, reference %g", hs, pair.name, i, pair.got[i], pair.want[i])
					}
				}
			}
		}

		gx, gdy := randSlice(rng, 1000, 6), randSlice(rng, 1000, 1)
		gdx := make([]float32, len(gx))
		GELUBackward(gdx, gx, gdy)
		for i, v := range gx {
			// Against float64: the float32 reference loses digits to
			// 1+tanh(u) for negative x, and the kernels need not repeat that.
			x := float64(v)
			k := math.Sqrt(2 / math.Pi)
			th := math.Tanh(k * (x + 0.044715*x*x*x))
			want := (0.5*(1+th) + 0.5*x*(1-th*th)*k*(1+3*0.044715*x*x)) * float64(gdy[i])
			if d := math.Abs(float64(gdx[i]) - want); d > 1e-6*math.Abs(float64(gdy[i]))+1e-5*math.Abs(want) {
				t.Fatalf("GELUBackward(%g) = %g, want %g", v, gdx[i], want)
			}
		}

		n, v := 5, 3*ceChunk+7
		logits := randSlice(rng, n*v, 8)
		targets := []int{0, v - 1, 17, ceChunk, 2 * ceChunk}
		const scale = 0.125
		losses := make([]float64, n)
		grad := slices.Clone(logits)
		CrossEntropy(losses, grad, targets, n, v, scale, true)
		rgrad := slices.Clone(logits)
		for i := 0; i < n; i++ {
			want := crossEntropyRowRef(rgrad[i*v:(i+1)*v], targets[i], scale, true)
			if math.Abs(losses[i]-want) > 1e-6*math.Abs(want) {
				t.Fatalf("loss %d = %g, reference %g", i, losses[i], want)
			}
		}
		for i := range rgrad {
			if d := math.Abs(float64(grad[i] - rgrad[i])); d > 1e-6*(1e-3+math.Abs(float64(rgrad[i]))) {
				t.Fatalf("dlogits[%d] = %g, reference %g", i, grad[i], rgrad[i])
			}
		}
	})
}
