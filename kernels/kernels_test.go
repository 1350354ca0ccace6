package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// Tolerances. A float32 sum of k products, in any order, is within
// k * 2^-24 * sum|x*w| of the exact value (the classical bound for
// recursive summation; pairwise trees do better), so the matrix kernels
// are held to that bound against a float64 evaluation: dropping or
// doubling one product breaks it by orders of magnitude. The other
// kernels are held against their float32 references by a few ulps of the
// values involved (the SIMD exp is Cephes' expf, about 1 ulp).

// eachImpl runs f once per kernel implementation this machine has, and
// restores the default afterwards.
func eachImpl(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	old := Impl()
	defer SetImpl(old)
	for _, name := range Impls() {
		if err := SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, f)
	}
}

func uniform(r *rand.Rand, n int, scale float32) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = (r.Float32()*2 - 1) * scale
	}
	return s
}

// sizes are the awkward lengths every kernel is tried on: below, at and
// past the 8- and 16-lane vectors and the micro-kernel tiles.
var sizes = []int{1, 3, 17, 63, 64, 65}

// randMat returns a random rows x cols matrix stored as dt, and its values
// as float32 (exactly what the kernels must compute with).
func randMat(t testing.TB, r *rand.Rand, rows, cols int, dt DType) (Mat, []float32) {
	f := NewMat(rows, cols, uniform(r, rows*cols, 0.5))
	m, err := f.Convert(dt)
	if err != nil {
		t.Fatal(err)
	}
	return m, m.Float32()
}

var dtypes = []DType{F32, F16, BF16, Q8_0}

// matShapes returns (n, k, m) triples over sizes, with m a multiple of 32
// for q8_0: row counts on both sides of the GEMM micro-kernel's 6 rows,
// and every awkward length as k and as m at least once.
func matShapes(dt DType) [][3]int {
	km := [][2]int{{1, 1}, {3, 17}, {17, 63}, {63, 64}, {64, 65}, {65, 3}, {768, 17}, {17, 160}}
	if dt == Q8_0 {
		km = [][2]int{{1, 32}, {3, 64}, {17, 96}, {63, 32}, {64, 64}, {65, 96}, {768, 32}}
	}
	var out [][3]int
	for _, n := range []int{1, 2, 5, 7, 13} {
		for _, s := range km {
			out = append(out, [3]int{n, s[0], s[1]})
		}
	}
	return append(out, [3]int{3, 768, 160}, [3]int{70, 300, 192}, [3]int{200, 200, 128})
}

// checkSum compares got to the float64 sum want within the summation bound
// k * 2^-24 * mag (+ a little for the final rounding).
//
// For q8_0 the SIMD kernels multiply the input by the block scale before
// the fused multiply-add, x*s*q, where the float64 evaluation uses the
// weight's float32 value, round(q*s): that is two more roundings per term.
func checkSum(t *testing.T, what func() string, got float32, want, mag float64, k int, dt DType) {
	t.Helper()
	extra := 2.0
	if dt == Q8_0 {
		extra = 4
	}
	tol := (float64(k)+extra)*math.Ldexp(1, -24)*mag + 1e-30
	if d := math.Abs(float64(got) - want); !(d <= tol) {
		t.Fatalf("%s = %g, want %g (diff %.3g > tol %.3g)", what(), got, want, d, tol)
	}
}

func TestMatMul(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for _, dt := range dtypes {
			for _, sh := range matShapes(dt) {
				n, k, m := sh[0], sh[1], sh[2]
				w, wf := randMat(t, r, k, m, dt)
				x := uniform(r, n*k, 1)
				bias := uniform(r, m, 1)
				if m%2 == 1 {
					bias = nil
				}
				out := uniform(r, n*m, 1e9) // garbage that must be overwritten
				MatMul(out, x, n, &w, bias)
				checkMatMul(t, dt, out, x, wf, n, k, m, func(i, j int) float64 {
					if bias == nil {
						return 0
					}
					return float64(bias[j])
				})
			}
		}
	})
}

// checkMatMul checks out[n, m] = init + x[n, k] @ wf[k, m] against the
// sum in float64, where init(i, j) is output (i, j)'s starting value (the
// bias, or what an accumulating product adds to).
func checkMatMul(t *testing.T, dt DType, out, x, wf []float32, n, k, m int, init func(i, j int) float64) {
	t.Helper()
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			want := init(i, j)
			mag := math.Abs(want)
			for p := 0; p < k; p++ {
				v := float64(x[i*k+p]) * float64(wf[p*m+j])
				want += v
				mag += math.Abs(v)
			}
			checkSum(t, func() string { return fmt.Sprintf("%v n=%d k=%d m=%d out[%d,%d]", dt, n, k, m, i, j) }, out[i*m+j], want, mag, k+1, dt)
		}
	}
}

func TestMatMulT(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(3, 4))
		for _, dt := range dtypes {
			for _, sh := range matShapes(dt) {
				// Here the blocks of 32 run along k.
				n, k, m := sh[0], sh[2], sh[1]
				w, wf := randMat(t, r, m, k, dt)
				x := uniform(r, n*k, 1)
				out := uniform(r, n*m, 1e9)
				MatMulT(out, x, n, &w)
				if dt == Q8_0 { // in integers, with x quantized (see TestMatMulQ8)
					checkQ8(t, "MatMulT", out, x, n, k, m, w.Q8, w.Scales, nil)
					continue
				}
				for i := 0; i < n; i++ {
					for j := 0; j < m; j++ {
						var want, mag float64
						for p := 0; p < k; p++ {
							v := float64(x[i*k+p]) * float64(wf[j*k+p])
							want += v
							mag += math.Abs(v)
						}
						checkSum(t, func() string { return fmt.Sprintf("%v n=%d k=%d m=%d out[%d,%d]", dt, n, k, m, i, j) }, out[i*m+j], want, mag, k, dt)
					}
				}
			}
		}
	})
}

// TestMatMulDeterministic checks the promise the server's batching and
// training's resume rely on: a row's result is the same bits whether it is
// computed alone, in a small batch (matrix-vector path) or a large one
// (GEMM path), on any number of threads.
func TestMatMulDeterministic(t *testing.T) {
	defer SetThreads(0)
	defer func(w int) { minWork = w }(minWork)
	minWork = 1 // split even these small products across the threads
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(5, 6))
		for _, dt := range dtypes {
			for _, sh := range [][2]int{{65, 96}, {300, 160}} {
				k, m := sh[0], sh[1]
				const n = 41
				w, _ := randMat(t, r, k, m, dt)
				x := uniform(r, n*k, 1)
				bias := uniform(r, m, 1)
				// MatMul with w [k, m]; MatMulT with w read as [out=k, in=m].
				xt := uniform(r, n*m, 1)
				SetThreads(1)
				want := make([]float32, n*m)
				MatMul(want, x, n, &w, bias)
				wantT := make([]float32, n*k)
				MatMulT(wantT, xt, n, &w)
				for _, threads := range []int{1, 3} {
					SetThreads(threads)
					for _, batch := range []int{1, 5, 7, n} {
						got := make([]float32, n*m)
						gotT := make([]float32, n*k)
						for i0 := 0; i0 < n; i0 += batch {
							b := min(batch, n-i0)
							MatMul(got[i0*m:], x[i0*k:], b, &w, bias)
							MatMulT(gotT[i0*k:], xt[i0*m:], b, &w)
						}
						if !slices.Equal(got, want) {
							t.Errorf("%v k=%d m=%d: MatMul in batches of %d on %d threads differs from one batch on 1 thread", dt, k, m, batch, threads)
						}
						if !slices.Equal(gotT, wantT) {
							t.Errorf("%v k=%d m=%d: MatMulT in batches of %d on %d threads differs from one batch on 1 thread", dt, m, k, batch, threads)
						}
					}
				}
			}
		}
	})
}

// near checks got against want within tol absolute plus rel relative.
func near(t *testing.T, what string, got, want []float32, tol, rel float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		d := math.Abs(float64(got[i]) - float64(want[i]))
		if !(d <= tol+rel*math.Abs(float64(want[i]))) {
			t.Fatalf("%s[%d] = %g, want %g (diff %.3g)", what, i, got[i], want[i], d)
		}
	}
}

func TestLayerNorm(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, c := range append(sizes, 768) {
			for _, n := range []int{1, 3, 17} {
				x := uniform(r, n*c, 3)
				for i := range x {
					x[i] += 1.5 // a mean far from zero tests the two-pass variance
				}
				g, b := uniform(r, c, 1), uniform(r, c, 1)
				want := make([]float32, n*c)
				layerNormRef(want, x, g, b, n, c, 1e-5)
				got := make([]float32, n*c)
				LayerNorm(got, x, g, b, n, c, 1e-5)
				// Normalised values are O(1); the sums differ in order only.
				near(t, fmt.Sprintf("LayerNorm n=%d c=%d", n, c), got, want, 2e-6, 2e-6)
				LayerNorm(x, x, g, b, n, c, 1e-5) // in place
				if !slices.Equal(x, got) {
					t.Errorf("LayerNorm n=%d c=%d in place differs", n, c)
				}
			}
		}
	})
}

func TestGELU(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 10))
		for _, n := range append(sizes, 100_000) {
			x := uniform(r, n, 8)
			x[0] = -30 // far tails: exp under- and overflow are clamped
			if n > 2 {
				x[1], x[2] = 30, 0
			}
			want := make([]float32, n)
			geluRef(want, x)
			got := make([]float32, n)
			GELU(got, x)
			// The reference forms 1+tanh in float32, which loses up to
			// 6e-8 absolute near x = -4; x/(1+exp(-2z)) does not.
			near(t, fmt.Sprintf("GELU n=%d", n), got, want, 3e-7, 4e-7)
			GELU(x, x)
			if !slices.Equal(x, got) {
				t.Errorf("GELU n=%d in place differs", n)
			}
		}
	})
}

func TestSoftmax(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(11, 12))
		for _, c := range append(sizes, 1000) {
			for _, n := range []int{1, 4} {
				x := uniform(r, n*c, 20)
				want := make([]float32, n*c)
				for i := 0; i < n; i++ {
					softmaxRowRef(want[i*c:(i+1)*c], x[i*c:(i+1)*c])
				}
				got := make([]float32, n*c)
				Softmax(got, x, n, c)
				near(t, fmt.Sprintf("Softmax n=%d c=%d", n, c), got, want, 1e-9, 2e-6)
			}
		}
	})
}

// TestMaxExp checks the sampler's kernels against float64: Max exactly,
// Exp's values and sum within float32 rounding of the exponential.
func TestMaxExp(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(21, 22))
		for _, n := range append(sizes, 50257) {
			x := uniform(r, n, 20)
			m := float32(math.Inf(-1))
			for _, v := range x {
				m = max(m, v)
			}
			if got := Max(x); got != m {
				t.Fatalf("Max n=%d = %g, want %g", n, got, m)
			}
			for _, a := range []float32{1, 0.7, 2} {
				out := make([]float32, n)
				sum := Exp(out, x, m, a)
				var want float64
				for i, v := range x {
					e := math.Exp(float64(a) * (float64(v) - float64(m)))
					want += e
					if d := math.Abs(float64(out[i]) - e); d > 4e-6*e+1e-37 {
						t.Fatalf("Exp n=%d a=%g [%d] = %g, want %g", n, a, i, out[i], e)
					}
				}
				if d := math.Abs(float64(sum) - want); d > 1e-5*want {
					t.Fatalf("Exp n=%d a=%g: sum %g, want %g", n, a, sum, want)
				}
			}
		}
		if got := Max(nil); !math.IsInf(float64(got), -1) {
			t.Fatalf("Max of nothing = %g, want -Inf", got)
		}
		// NaN is passed over wherever it lies; only NaN leaves -Inf.
		nan := float32(math.NaN())
		for _, n := range []int{1, 15, 16, 17, 33, 100} {
			x := uniform(r, n, 1)
			for trial := range 20 {
				y := slices.Clone(x)
				want := float32(math.Inf(-1))
				for i := range y {
					if (i+trial)%3 == 0 {
						y[i] = nan
					} else {
						want = max(want, y[i])
					}
				}
				if got := Max(y); got != want {
					t.Fatalf("Max n=%d with NaNs = %g, want %g", n, got, want)
				}
			}
			for i := range x {
				x[i] = nan
			}
			if got := Max(x); !math.IsInf(float64(got), -1) {
				t.Fatalf("Max of %d NaNs = %g, want -Inf", n, got)
			}
		}
	})
}

func TestAdd(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(13, 14))
		for _, n := range append(sizes, 100_000) {
			a, b := uniform(r, n, 1), uniform(r, n, 1)
			got := make([]float32, n)
			Add(got, a, b)
			for i := range got {
				if got[i] != a[i]+b[i] {
					t.Fatalf("Add n=%d [%d] = %g, want %g", n, i, got[i], a[i]+b[i])
				}
			}
		}
	})
}

func TestAttention(t *testing.T) {
	defer SetThreads(0)
	defer func(w int) { minWork = w }(minWork)
	minWork = 1
	SetThreads(3)
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(15, 16))
		for _, sh := range [][2]int{{2, 32}, {3, 17}, {2, 64}, {1, 8}, {4, 16}} {
			nHead, hs := sh[0], sh[1]
			c := nHead * hs
			ld := 3*c + 5 // a row stride wider than the heads, as in the model
			for _, tp := range [][2]int{{1, 0}, {5, 0}, {1, 40}, {7, 33}, {70, 0}, {12, 130}} {
				tt, pos := tp[0], tp[1]
				kc := keyCache(uniform(r, (pos+tt)*ld, 2), pos+tt, c, ld)
				vc := uniform(r, (pos+tt)*ld, 2)
				q := uniform(r, tt*c, 2)
				want := make([]float32, tt*c)
				att := make([]float32, pos+tt)
				for i := 0; i < tt; i++ {
					for h := 0; h < nHead; h++ {
						attentionRowRef(want, q, kc, vc, att, i, h, pos, nHead, hs, ld)
					}
				}
				got := make([]float32, tt*c)
				Attention(got, q, kc, vc, tt, pos, nHead, hs, ld)
				what := fmt.Sprintf("Attention heads=%d hs=%d t=%d pos=%d", nHead, hs, tt, pos)
				// Outputs are weighted means of values of size 2.
				near(t, what, got, want, 4e-6, 0)
				// One position at a time gives the same bits.
				for i := 0; i < tt; i++ {
					one := make([]float32, c)
					Attention(one, q[i*c:], kc, vc, 1, pos+i, nHead, hs, ld)
					if !slices.Equal(one, got[i*c:(i+1)*c]) {
						t.Fatalf("%s: position %d alone differs from the batch", what, i)
					}
				}
			}
		}
	})
}

// keyCache returns the keys of n positions, row i at k[i*ld:i*ld+c], in
// Attention's layout.
func keyCache(k []float32, n, c, ld int) []float32 {
	kc := make([]float32, KeyCacheLen(n, c))
	StoreKeys(kc, 0, k, n, c, ld)
	return kc
}

func TestStoreKeys(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	const c, ld = 37, 41
	k := uniform(r, 51*ld, 1)
	kc := uniform(r, KeyCacheLen(130, c), 1)
	was := slices.Clone(kc)
	// Positions 50..100 from rows 0..50, in two calls that start and end
	// off the 16-position steps and cross the block boundary at 64.
	StoreKeys(kc, 50, k, 19, c, ld)
	StoreKeys(kc, 69, k[19*ld:], 32, c, ld)
	for p := 0; p < 2*KeyBlock; p++ {
		for j := 0; j < c; j++ {
			at := p/KeyBlock*c*KeyBlock + j*KeyBlock + p%KeyBlock
			want := was[at]
			if p >= 50 && p <= 100 {
				want = k[(p-50)*ld+j]
			}
			if kc[at] != want {
				t.Fatalf("channel %d position %d = %g, want %g", j, p, kc[at], want)
			}
		}
	}
}

// TestStoreQKV checks the split of a fused projection into queries, key
// cache and value cache, on one thread and split across four, for a run
// of positions that starts and ends off the 16-position steps.
func TestStoreQKV(t *testing.T) {
	defer SetThreads(0)
	defer func(w int) { minWork = w }(minWork)
	minWork = 1
	r := rand.New(rand.NewPCG(29, 30))
	const c, pos, n = 24, 37, 70
	qkv := uniform(r, n*3*c, 1)
	for _, threads := range []int{1, 4} {
		SetThreads(threads)
		q := make([]float32, n*c)
		kc := uniform(r, KeyCacheLen(pos+n, c), 1)
		vc := uniform(r, (pos+n)*c, 1)
		wantK, wantV := slices.Clone(kc), slices.Clone(vc)
		for i := range n {
			for j := range c {
				wantK[keyIndex(pos+i, j, c)] = qkv[i*3*c+c+j]
				wantV[(pos+i)*c+j] = qkv[i*3*c+2*c+j]
			}
		}
		StoreQKV(q, kc, vc, pos, qkv, n, c)
		for i := range n {
			if !slices.Equal(q[i*c:(i+1)*c], qkv[i*3*c:i*3*c+c]) {
				t.Fatalf("%d threads: queries of row %d differ", threads, i)
			}
		}
		if !slices.Equal(kc, wantK) {
			t.Errorf("%d threads: key cache differs", threads)
		}
		if !slices.Equal(vc, wantV) {
			t.Errorf("%d threads: value cache differs", threads)
		}
	}
}

// TestAttentionBatch checks that sequences attended together give each
// the bits it gets alone.
func TestAttentionBatch(t *testing.T) {
	defer SetThreads(0)
	defer func(w int) { minWork = w }(minWork)
	minWork = 1
	SetThreads(3)
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(25, 26))
		for _, sh := range [][2]int{{2, 32}, {3, 17}, {8, 32}} {
			nHead, hs := sh[0], sh[1]
			c := nHead * hs
			ld := c
			var seqs []AttentionSeq
			var want [][]float32
			for _, tp := range [][2]int{{1, 0}, {1, 40}, {0, 3}, {7, 33}, {1, 9}, {13, 2}} {
				tt, pos := tp[0], tp[1]
				sq := AttentionSeq{
					Out: make([]float32, max(tt, 1)*c), Q: uniform(r, max(tt, 1)*c, 2),
					K: uniform(r, KeyCacheLen(pos+tt+1, c), 2), V: uniform(r, (pos+tt+1)*ld, 2), T: tt, Pos: pos,
				}
				alone := make([]float32, len(sq.Out))
				Attention(alone, sq.Q, sq.K, sq.V, tt, pos, nHead, hs, ld)
				seqs = append(seqs, sq)
				want = append(want, alone)
			}
			AttentionBatch(seqs, nHead, hs, ld)
			for i, sq := range seqs {
				if !slices.Equal(sq.Out, want[i]) {
					t.Fatalf("heads=%d hs=%d: sequence %d (t=%d pos=%d) batched differs from alone", nHead, hs, i, sq.T, sq.Pos)
				}
			}
		}
	})
}

func TestConvertRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(17, 18))
	m := NewMat(3, 64, uniform(r, 3*64, 2))
	for _, dt := range []DType{F16, BF16, Q8_0} {
		c, err := m.Convert(dt)
		if err != nil {
			t.Fatal(err)
		}
		back := c.Float32()
		// Relative precision: f16 2^-11, bf16 2^-8; q8_0 half a step of
		// max|block|/127.
		for i, v := range m.F32 {
			d := math.Abs(float64(back[i] - v))
			var tol float64
			switch dt {
			case F16:
				tol = math.Abs(float64(v)) * 0x1p-11
			case BF16:
				tol = math.Abs(float64(v)) * 0x1p-8
			case Q8_0:
				tol = 2.0 / 127 / 2 * 1.0001
			}
			if d > tol {
				t.Fatalf("%v: value %d = %g after the round trip, want %g", dt, i, back[i], v)
			}
		}
		if c.Bytes() >= m.Bytes() {
			t.Errorf("%v takes %d bytes, f32 %d", dt, c.Bytes(), m.Bytes())
		}
	}
	odd := NewMat(2, 33, make([]float32, 66))
	if _, err := odd.Convert(Q8_0); err == nil {
		t.Error("q8_0 of 33 columns: no error")
	}
}

func TestSetImpl(t *testing.T) {
	old := Impl()
	defer SetImpl(old)
	if err := SetImpl("generic"); err != nil || Impl() != "generic" {
		t.Fatalf("SetImpl(generic): %v, Impl %q", err, Impl())
	}
	if err := SetImpl("no-such"); err == nil {
		t.Error("SetImpl(no-such): no error")
	}
}

// TestNoAllocs checks that the kernels of a decode step allocate nothing
// once warm.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("under -race sync.Pool drops items at random")
	}
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(19, 20))
		w := NewMat(256, 512, uniform(r, 256*512, 1))
		x := uniform(r, 256, 1)
		out := make([]float32, 512)
		g, b := uniform(r, 256, 1), uniform(r, 256, 1)
		kc := uniform(r, 64*256, 1)
		att := make([]float32, 256)
		step := func() {
			MatMul(out, x, 1, &w, out)
			MatMulT(x, out, 1, &w)
			LayerNorm(x, x, g, b, 1, 256, 1e-5)
			GELU(out, out)
			Add(x, x, att)
			Attention(att, x, kc, kc, 1, 63, 4, 64, 256)
		}
		step()
		if a := testing.AllocsPerRun(20, step); a > 0 {
			t.Errorf("a decode step's kernels allocate %.1f times", a)
		}
		// And a prefill's: the GEMM and blocked-attention paths.
		xs := uniform(r, 8*512, 1)
		outs := make([]float32, 8*512)
		prefill := func() {
			MatMul(outs, xs[:8*256], 8, &w, nil)
			MatMulT(xs[:8*256], outs, 8, &w)
			Attention(outs[:8*256], xs[:8*256], kc, kc, 8, 40, 4, 64, 256)
		}
		prefill()
		if a := testing.AllocsPerRun(10, prefill); a > 0 {
			t.Errorf("a prefill's kernels allocate %.1f times", a)
		}
	})
}

// TestMatMulAcc checks the accumulating form used by the backward pass:
// out += x @ w, with each chain of multiply-adds starting from out, on
// the matrix-vector (few rows) and GEMM paths of every implementation.
func TestMatMulAcc(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(7, 8))
		for _, dt := range dtypes {
			for _, sh := range matShapes(dt) {
				n, k, m := sh[0], sh[1], sh[2]
				w, wf := randMat(t, r, k, m, dt)
				x := uniform(r, n*k, 1)
				out := uniform(r, n*m, 1)
				start := slices.Clone(out)
				matMulAcc(out, x, n, &w)
				checkMatMul(t, dt, out, x, wf, n, k, m, func(i, j int) float64 { return float64(start[i*m+j]) })
			}
		}
	})
}

// TestPrefetch checks that Prefetch hands idle threads the first bytes of
// each kind of matrix, up to the budget, and that the steps stop there.
func TestPrefetch(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(9, 9))
		for _, dt := range []DType{F32, F16, BF16, Q8_0} {
			for _, sh := range [][2]int{{64, 96}, {1024, 2048}} {
				w, _ := randMat(t, r, sh[0], sh[1], dt)
				Prefetch(&w, 1)
				want := min(w.Bytes()-4*int64(len(w.Scales)), aheadBudget) &^ (aheadStep - 1) // the values, not the q8_0 scales
				if n := ahead.n.Load(); n != want {
					t.Fatalf("%v %dx%d: fetching %d bytes, want %d", dt, sh[0], sh[1], n, want)
				}
				for range want/aheadStep + 2 {
					prefetchIdle()
				}
				if next := ahead.next.Load(); next < want || next > want+aheadStep {
					t.Fatalf("%v %dx%d: stopped at %d of %d bytes", dt, sh[0], sh[1], next, want)
				}
			}
		}
		w, _ := randMat(t, r, 64, 64, F32)
		for _, m := range []*Mat{{}, &w} {
			Prefetch(&w, 1)
			Prefetch(m, 2*prefetchRows) // no data, or too many rows: nothing to do
			if ahead.base.Load() != 0 {
				t.Errorf("a request for %d bytes (%d rows) left a fetch pending", m.Bytes(), 2*prefetchRows)
			}
		}
	})
}

// TestMeasureBandwidth runs the copy and read measurements on buffers
// small enough for a test (they measure the cache, not memory).
func TestMeasureBandwidth(t *testing.T) {
	for _, f := range []func(int) float64{MeasureCopyBandwidthSize, MeasureReadBandwidthSize} {
		if gbs := f(1 << 20); !(gbs > 0) || math.IsInf(gbs, 0) {
			t.Errorf("bandwidth %v GB/s, want a positive number", gbs)
		}
	}
}
