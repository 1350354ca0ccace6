package kernels

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestQuantizeRow checks the input quantization against its definition:
// per block of 32, d = max|x|/127 and q = round(x/d) to nearest even, in
// float64, with the lane scales and corrections the kernels read.
func TestQuantizeRow(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(41, 42))
		for _, k := range []int{32, 64, 96, 768} {
			x := uniform(r, k, 3)
			x[0] = 0
			if k >= 64 {
				clear(x[32:64]) // an all-zero block
			}
			if k >= 96 { // a block of subnormals: its scale would be too
				for p := 64; p < 96; p++ {
					x[p] = float32(p-80) * 0x1p-140
				}
			}
			x[k-1] = 1.5 * float32(math.Abs(float64(x[k-2]))) // a block's largest value last
			rec := make([]byte, (k+63)/64*256)
			for i := range rec {
				rec[i] = 0xa5 // garbage that must be overwritten or cleared
			}
			quantizeRow(active(), rec, 256, x)
			for b := 0; b < k/Q8Block; b++ {
				blk := x[b*Q8Block : (b+1)*Q8Block]
				var amax float32
				for _, v := range blk {
					amax = max(amax, float32(math.Abs(float64(v))))
				}
				d := amax / 127
				q, sx := q8Block(rec, 256, b)
				if sx != d {
					t.Fatalf("k=%d block %d: scale %g, want %g", k, b, sx, d)
				}
				for p, v := range blk {
					want := 0.0
					if d >= 0x1p-126 {
						want = max(-127, min(127, math.RoundToEven(float64(v*(1/d)))))
					}
					if got := int8(q[p]); float64(got) != want {
						t.Fatalf("k=%d block %d value %d: %d, want %v (x %g)", k, b, p, got, want, v)
					}
				}
				g, h := b/2*256, b%2*32
				for l := range 8 {
					lane := math.Float32frombits(binary.LittleEndian.Uint32(rec[g+64+h+4*l:]))
					corr := int32(binary.LittleEndian.Uint32(rec[g+128+h+4*l:]))
					sum := int32(int8(q[4*l])) + int32(int8(q[4*l+1])) + int32(int8(q[4*l+2])) + int32(int8(q[4*l+3]))
					if lane != d || corr != -128*sum {
						t.Fatalf("k=%d block %d lane %d: scale %g correction %d, want %g and %d", k, b, l, lane, corr, d, -128*sum)
					}
				}
			}
			if k >= 96 { // blocks with a NaN or an infinity: values 0, scale NaN
				x[70] = float32(math.NaN())
				x[k-5] = float32(math.Inf(-1))
				quantizeRow(active(), rec, 256, x)
				for _, b := range []int{2, k/Q8Block - 1} {
					q, sx := q8Block(rec, 256, b)
					if !math.IsNaN(float64(sx)) || slices.ContainsFunc(q, func(c byte) bool { return c != 0 }) {
						t.Errorf("k=%d: block %d with a NaN or infinity quantized to %v, scale %g", k, b, q, sx)
					}
				}
			}
			if k%64 != 0 { // the unused half of the last group reads as zeros
				g := k / 64 * 256
				for _, off := range []int{32, 96, 160} {
					if slices.ContainsFunc(rec[g+off:g+off+32], func(c byte) bool { return c != 0 }) {
						t.Fatalf("k=%d: unused half at %d not cleared", k, off)
					}
				}
			}
		}
	})
}

// TestQuantizeRowSIMD holds the SIMD quantization to the Go reference
// byte for byte, over magnitudes from subnormal to near overflow and ties
// that round to even.
func TestQuantizeRowSIMD(t *testing.T) {
	r := rand.New(rand.NewPCG(43, 44))
	const k = 64 * 40
	x := make([]float32, k)
	for b := 0; b < k/Q8Block; b++ {
		scale := float32(math.Ldexp(1, r.IntN(250)-130))
		for p := range Q8Block {
			x[b*Q8Block+p] = (2*r.Float32() - 1) * scale
		}
		if b%3 == 0 { // exact halves after scaling: 127 and a few x.5 multiples of d
			x[b*Q8Block] = 127 * scale
			for p := 1; p < 6; p++ {
				x[b*Q8Block+p] = (float32(p) + 0.5) * scale
			}
		}
	}
	stride := 3 * 256 // groups of one row among three
	want := make([]byte, k/64*stride)
	quantizeBlocks(want, stride, x)
	ran := 0
	for _, im := range impls {
		if im.quantQ8 == nil {
			continue
		}
		ran++
		got := make([]byte, len(want))
		quantizeRow(im, got, stride, x)
		for g := 0; g < k/64; g++ {
			if w, o := want[g*stride:g*stride+192], got[g*stride:g*stride+192]; !bytes.Equal(w, o) {
				t.Fatalf("%s: group %d differs from the Go reference:\n got %v\nwant %v", im.name, g, o, w)
			}
		}
	}
	if ran == 0 {
		t.Skip("no SIMD quantization on this machine")
	}
}

// q8Want returns the exact value of row i of x times the q8_0 weights
// (row j, values q and scales s) as the integer kernels define it, with x
// quantized, and the magnitude sum of its terms.
func q8Want(x []float32, q []int8, s []float32) (want, mag float64) {
	rec := make([]byte, (len(x)+63)/64*256)
	quantizeRow(active(), rec, 256, x)
	for b := range s {
		xq, sx := q8Block(rec, 256, b)
		for p := range Q8Block {
			v := float64(int8(xq[p])) * float64(q[b*Q8Block+p]) * float64(s[b]) * float64(sx)
			want += v
			mag += math.Abs(v)
		}
	}
	return want, mag
}

// checkQ8 checks out[n, m] = x[n, k] · W (+ bias) for q8_0 weights whose
// output j's row of k values is q[j*k:], scales s[j*k/32:], against the
// float64 evaluation of the integer definition. Each term is a float32
// integer times a product of scales (one rounding); the lanes sum in
// float32, so checkSum's bound holds with a few roundings to spare.
func checkQ8(t *testing.T, what string, out, x []float32, n, k, m int, q []int8, s, bias []float32) {
	t.Helper()
	for i := 0; i < n; i++ {
		for j := 0; j < m; j++ {
			want, mag := q8Want(x[i*k:(i+1)*k], q[j*k:(j+1)*k], s[j*k/Q8Block:(j+1)*k/Q8Block])
			if bias != nil {
				want += float64(bias[j])
				mag += math.Abs(float64(bias[j]))
			}
			checkSum(t, func() string { return fmt.Sprintf("%s n=%d k=%d m=%d out[%d,%d]", what, n, k, m, i, j) }, out[i*m+j], want, mag, k, Q8_0)
		}
	}
}

// q8Shapes are (n, k, m) for the integer path: k on both sides of the
// kernels' 64 inputs (an odd number of blocks leaves one to Go), m on both
// sides of their 4 rows and of a thread's chunk.
var q8Shapes = [][3]int{{1, 32, 1}, {1, 64, 5}, {1, 96, 70}, {2, 768, 9}, {3, 160, 4}, {7, 64, 130}, {13, 3072, 3}, {1, 3072, 67}}

// TestMatMulQ8 checks MatMulT of q8_0 weights and MatMul of transposed
// ones, the integer path, on every implementation.
func TestMatMulQ8(t *testing.T) {
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(43, 44))
		for _, sh := range q8Shapes {
			n, k, m := sh[0], sh[1], sh[2]
			x := uniform(r, n*k, 1)
			x[0] = -x[1] // cancellation within a lane

			w, _ := randMat(t, r, m, k, Q8_0)
			out := uniform(r, n*m, 1e9) // garbage that must be overwritten
			MatMulT(out, x, n, &w)
			checkQ8(t, "MatMulT", out, x, n, k, m, w.Q8, w.Scales, nil)

			f := NewMat(k, m, uniform(r, k*m, 0.5))
			wt, err := f.ConvertQ8T()
			if err != nil {
				t.Fatal(err)
			}
			bias := uniform(r, m, 1)
			MatMul(out, x, n, &wt, bias)
			checkQ8(t, "MatMul (transposed)", out, x, n, k, m, wt.Q8, wt.Scales, bias)
			MatMul(out, x, n, &wt, nil)
			checkQ8(t, "MatMul (transposed, no bias)", out, x, n, k, m, wt.Q8, wt.Scales, nil)
		}
	})
}

// TestMatMulQ8Extremes: weights and inputs at ±127 in every lane (the
// largest integer sums, and AVX2's pairs of products at their bound), and
// rows of zeros, infinities and NaN, which must come out NaN, not as a
// number.
func TestMatMulQ8Extremes(t *testing.T) {
	const k, m = 128, 6
	eachImpl(t, func(t *testing.T) {
		q := make([]int8, m*k)
		for i := range q {
			q[i] = []int8{127, -127}[i/3%2]
		}
		s := make([]float32, m*k/Q8Block)
		for i := range s {
			s[i] = 0.01 * float32(i+1)
		}
		w, err := NewMatQ8(m, k, q, s)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]float32, 4*k)
		for p := range k {
			x[p] = []float32{2, -2}[p/2%2] // ±127 once quantized
			x[k+p] = -x[p]
		}
		x[3*k] = float32(math.Inf(1))
		x[3*k+40] = float32(math.NaN())
		out := make([]float32, 4*m)
		MatMulT(out, x, 4, &w)
		checkQ8(t, "MatMulT", out[:3*m], x[:3*k], 3, k, m, q, s, nil)
		for j := range m {
			if !math.IsNaN(float64(out[3*m+j])) {
				t.Errorf("row with Inf and NaN: out[%d] = %g, want NaN", j, out[3*m+j])
			}
		}
	})
}

// TestMatMulQ8Deterministic: each output is the same bits computed alone,
// in batches, and on any number of threads.
func TestMatMulQ8Deterministic(t *testing.T) {
	defer SetThreads(0)
	defer func(w int) { minWork = w }(minWork)
	minWork = 1
	eachImpl(t, func(t *testing.T) {
		r := rand.New(rand.NewPCG(45, 46))
		const n, k, m = 41, 160, 150
		f := NewMat(k, m, uniform(r, k*m, 0.5))
		w, err := f.ConvertQ8T()
		if err != nil {
			t.Fatal(err)
		}
		x := uniform(r, n*k, 1)
		bias := uniform(r, m, 1)
		SetThreads(1)
		want := make([]float32, n*m)
		MatMul(want, x, n, &w, bias)
		for _, threads := range []int{1, 3} {
			SetThreads(threads)
			for _, batch := range []int{1, 5, n} {
				got := make([]float32, n*m)
				for i0 := 0; i0 < n; i0 += batch {
					b := min(batch, n-i0)
					MatMul(got[i0*m:], x[i0*k:], b, &w, bias)
				}
				if !slices.Equal(got, want) {
					t.Errorf("batches of %d on %d threads differ from one batch on 1 thread", batch, threads)
				}
			}
		}
	})
}

// TestConvertQ8T checks the transposed layout: the same values as Convert
// (blocks down the columns instead of along the rows), read back by Row
// and Float32, and converted back to other types.
func TestConvertQ8T(t *testing.T) {
	r := rand.New(rand.NewPCG(47, 48))
	m := NewMat(64, 3, uniform(r, 64*3, 2))
	c, err := m.ConvertQ8T()
	if err != nil {
		t.Fatal(err)
	}
	if !c.T || c.DType != Q8_0 || c.Rows != 64 || c.Cols != 3 {
		t.Fatalf("ConvertQ8T gave %v (T %v)", c.String(), c.T)
	}
	back := c.Float32()
	for i, v := range m.F32 {
		col := m.F32[i%3:]
		var amax float64
		for p := i / 3 / Q8Block * Q8Block; p < (i/3/Q8Block+1)*Q8Block; p++ {
			amax = max(amax, math.Abs(float64(col[3*p])))
		}
		if d := math.Abs(float64(back[i] - v)); d > amax/127/2*1.0001 {
			t.Fatalf("value %d = %g after the round trip, want %g", i, back[i], v)
		}
	}
	row := make([]float32, 3)
	c.Row(row, 5)
	if !slices.Equal(row, back[15:18]) {
		t.Errorf("Row(5) = %v, Float32 has %v", row, back[15:18])
	}
	f16, err := c.Convert(F16)
	if err != nil || f16.T || f16.Rows != 64 {
		t.Fatalf("Convert(F16) of a transposed matrix: %v, T %v, err %v", f16.String(), f16.T, err)
	}
	odd := NewMat(33, 2, make([]float32, 66))
	if _, err := odd.ConvertQ8T(); err == nil {
		t.Error("transposed q8_0 of 33 rows: no error")
	}
}
