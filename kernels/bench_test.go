package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// Benchmarks at GPT-2 124M shapes (C = 768). Decode benchmarks report the
// weight bandwidth reached (MB/s of weights), prefill ones GFLOP/s. Choose
// the implementation with GPT2_KERNELS; the kernels use GOMAXPROCS threads.

func benchMat(b *testing.B, rows, cols int, dt DType) Mat {
	r := rand.New(rand.NewPCG(1, 1))
	m, _ := randMat(b, r, rows, cols, dt)
	return m
}

// linearMat is a layer's weight matrix [in, out] as a model holds it:
// q8_0 transposed, for the integer kernels.
func linearMat(b *testing.B, r *rand.Rand, in, out int, dt DType) Mat {
	m, _ := randMat(b, r, in, out, F32)
	if dt == Q8_0 {
		t, err := m.ConvertQ8T()
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	c, err := m.Convert(dt)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkMatMulDecode(b *testing.B) {
	for _, dt := range dtypes {
		for _, sh := range [][2]int{{768, 3072}, {3072, 768}} {
			b.Run(fmt.Sprintf("%v/%dx%d", dt, sh[0], sh[1]), func(b *testing.B) {
				w := linearMat(b, rand.New(rand.NewPCG(1, 1)), sh[0], sh[1], dt)
				x := make([]float32, sh[0])
				out := make([]float32, sh[1])
				bias := make([]float32, sh[1])
				b.SetBytes(w.Bytes())
				for b.Loop() {
					MatMul(out, x, 1, &w, bias)
				}
			})
		}
	}
}

func BenchmarkMatMulTDecode(b *testing.B) {
	for _, dt := range dtypes {
		b.Run(dt.String(), func(b *testing.B) {
			w := benchMat(b, 50257, 768, dt)
			x := make([]float32, 768)
			out := make([]float32, 50257)
			b.SetBytes(w.Bytes())
			for b.Loop() {
				MatMulT(out, x, 1, &w)
			}
		})
	}
}

func gflops(b *testing.B, flops float64) {
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}

func BenchmarkMatMulPrefill(b *testing.B) {
	for _, dt := range []DType{F32, Q8_0} {
		for _, sh := range [][3]int{{512, 768, 2304}, {512, 768, 3072}, {512, 3072, 768}} {
			n, k, m := sh[0], sh[1], sh[2]
			b.Run(fmt.Sprintf("%v/%dx%dx%d", dt, n, k, m), func(b *testing.B) {
				w := linearMat(b, rand.New(rand.NewPCG(1, 1)), k, m, dt)
				x := uniform(rand.New(rand.NewPCG(2, 2)), n*k, 1)
				out := make([]float32, n*m)
				for b.Loop() {
					MatMul(out, x, n, &w, nil)
				}
				gflops(b, 2*float64(n*k*m))
			})
		}
	}
}

func BenchmarkMatMulTPrefill(b *testing.B) {
	n, k, m := 512, 768, 8192
	w := benchMat(b, m, k, F32)
	x := uniform(rand.New(rand.NewPCG(2, 2)), n*k, 1)
	out := make([]float32, n*m)
	for b.Loop() {
		MatMulT(out, x, n, &w)
	}
	gflops(b, 2*float64(n*k*m))
}

func BenchmarkAttentionPrefill(b *testing.B) {
	const t, nHead, hs = 512, 12, 64
	c := nHead * hs
	r := rand.New(rand.NewPCG(3, 3))
	kc, vc, q := uniform(r, KeyCacheLen(t, c), 1), uniform(r, t*c, 1), uniform(r, t*c, 1)
	out := make([]float32, t*c)
	for b.Loop() {
		Attention(out, q, kc, vc, t, 0, nHead, hs, c)
	}
	gflops(b, 2*2*float64(t*(t+1)/2*c))
}

func BenchmarkAttentionDecode(b *testing.B) {
	const pos, nHead, hs = 512, 12, 64
	c := nHead * hs
	r := rand.New(rand.NewPCG(3, 3))
	kc, vc, q := uniform(r, KeyCacheLen(pos+1, c), 1), uniform(r, (pos+1)*c, 1), uniform(r, c, 1)
	out := make([]float32, c)
	for b.Loop() {
		Attention(out, q, kc, vc, 1, pos, nHead, hs, c)
	}
}

// BenchmarkStoreQKV splits a 512-token prompt's fused projection into
// queries and the caches, on one thread and on all; it reports the bytes
// moved (read plus written) per second.
func BenchmarkStoreQKV(b *testing.B) {
	defer SetThreads(0)
	const n, c = 512, 768
	r := rand.New(rand.NewPCG(3, 3))
	qkv := uniform(r, n*3*c, 1)
	q, kc, vc := make([]float32, n*c), make([]float32, KeyCacheLen(n, c)), make([]float32, n*c)
	for _, threads := range []int{1, 0} {
		SetThreads(threads)
		b.Run(fmt.Sprintf("threads=%d", Threads()), func(b *testing.B) {
			b.SetBytes(2 * 4 * n * 3 * c)
			for b.Loop() {
				StoreQKV(q, kc, vc, 0, qkv, n, c)
			}
		})
	}
}

func BenchmarkLayerNorm(b *testing.B) {
	const n, c = 512, 768
	r := rand.New(rand.NewPCG(4, 4))
	x, g, bb := uniform(r, n*c, 1), uniform(r, c, 1), uniform(r, c, 1)
	out := make([]float32, n*c)
	b.SetBytes(n * c * 8)
	for b.Loop() {
		LayerNorm(out, x, g, bb, n, c, 1e-5)
	}
}

func BenchmarkGELU(b *testing.B) {
	const n = 512 * 3072
	x := uniform(rand.New(rand.NewPCG(5, 5)), n, 3)
	out := make([]float32, n)
	b.SetBytes(n * 8)
	for b.Loop() {
		GELU(out, x)
	}
}

func BenchmarkSoftmax(b *testing.B) {
	const n, c = 16, 50257
	x := uniform(rand.New(rand.NewPCG(6, 6)), n*c, 5)
	b.SetBytes(n * c * 8)
	for b.Loop() {
		Softmax(x, x, n, c)
	}
}

func BenchmarkParallelOverhead(b *testing.B) {
	t := &ewTask{im: active(), op: ewAdd, out: make([]float32, 64), a: make([]float32, 64), b: make([]float32, 64)}
	for b.Loop() {
		parallel(64, 1, t)
	}
}

// BenchmarkDecodeStep runs the matrices of one GPT-2 124M decode step, at
// batch 1: twelve blocks of four matrices and the output projection, each
// weight read once, as a token's forward pass reads them. It reports the
// weight bytes per second (MB/s) and tokens per second, plain and with
// each next matrix named to Prefetch before a call, as the model does.
func BenchmarkDecodeStep(b *testing.B) {
	const C, V = 768, 50257
	for _, dt := range dtypes {
		r := rand.New(rand.NewPCG(1, 1))
		var ws []Mat
		var bytes int64
		for range 12 {
			for _, sh := range [][2]int{{C, 3 * C}, {C, C}, {C, 4 * C}, {4 * C, C}} {
				w := linearMat(b, r, sh[0], sh[1], dt)
				ws = append(ws, w)
				bytes += w.Bytes()
			}
		}
		head, _ := randMat(b, r, V, C, dt)
		bytes += head.Bytes()
		x := uniform(r, 4*C, 1)
		out := make([]float32, V)
		for _, ahead := range []bool{false, true} {
			name := dt.String() + "/plain"
			if ahead {
				name = dt.String() + "/prefetch"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(bytes)
				for b.Loop() {
					for i := range ws {
						if ahead {
							if i+1 < len(ws) {
								Prefetch(&ws[i+1], 1)
							} else {
								Prefetch(&head, 1)
							}
						}
						MatMul(out, x, 1, &ws[i], nil)
					}
					if ahead {
						Prefetch(&ws[0], 1)
					}
					MatMulT(out, x[:C], 1, &head)
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tok/s")
			})
		}
	}
}

// BenchmarkMatMulTBatch is the output head of a serving step with n
// sequences, on the default model's shape (50257 x 256, fp16 weights).
func BenchmarkMatMulTBatch(b *testing.B) {
	k, m := 256, 50257
	for _, dt := range []DType{F32, F16} {
		w := benchMat(b, m, k, dt)
		for _, n := range []int{1, 4, 16} {
			b.Run(fmt.Sprintf("%v/%d", dt, n), func(b *testing.B) {
				x := uniform(rand.New(rand.NewPCG(2, 2)), n*k, 1)
				out := make([]float32, n*m)
				for b.Loop() {
					MatMulT(out, x, n, &w)
				}
				gflops(b, 2*float64(n*k*m))
			})
		}
	}
}

// BenchmarkDotTile is the MatMulT tile kernel alone, its operands in L1
// (one thread): the ceiling the batched output head can approach.
func BenchmarkDotTile(b *testing.B) {
	im := active()
	if !im.simd {
		b.Skip("no SIMD tile kernel in the generic implementation")
	}
	k, tiles := 256, tileRun
	mr, nr := im.tileMR, im.tileNR
	r := rand.New(rand.NewPCG(1, 1))
	x := uniform(r, mr*k, 1)
	w := uniform(r, tiles*nr*k, 1)
	out := make([]float32, mr*tiles*nr)
	for b.Loop() {
		im.dotTile[F32](&out[0], 4*tiles*nr, &x[0], 4*k, unsafe.Pointer(&w[0]), 4*k, k, tiles, unsafe.Pointer(&x[0]), 0)
	}
	gflops(b, 2*float64(mr*tiles*nr*k))
}

// BenchmarkQuantizeQ8 quantizes one row of activations for the q8_0
// integer kernels, at the widths of GPT-2 124M's matrix inputs, with each
// implementation (a decode step quantizes ~65,000 values on one thread).
func BenchmarkQuantizeQ8(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, im := range impls {
		for _, k := range []int{768, 3072} {
			b.Run(fmt.Sprintf("%s/%d", im.name, k), func(b *testing.B) {
				x := uniform(r, k, 1)
				rec := make([]byte, (k+63)/64*256)
				b.SetBytes(int64(4 * k))
				for b.Loop() {
					quantizeRow(im, rec, 256, x)
				}
			})
		}
	}
}
