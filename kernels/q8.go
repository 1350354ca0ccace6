package kernels

import (
	"math"
	"sync"
	"unsafe"
)

// The q8_0 products in integers. Each row of x is quantized as the weights
// are, in blocks of 32 inputs with scale max|x|/127 (q8Acts), and each
// block's dot product with a block of weights is an exact int32; only the
// scaling and the sum over blocks are in float32:
//
//	out[j] = Σ_b float32(Σ_p xq[p]·wq[j, p]) · (sw[j, b] · sx[b])
//
// (the SIMD kernels split each block's integer sum over lanes of 4 inputs
// and sum the lanes in float32). That is how GGUF's Q8_0 runs too: the
// weights are read as bytes and multiplied as bytes (AVX-512 VNNI does 64
// of them per instruction), so decoding is bound by memory, not by
// converting every weight to float32. Quantizing the input rounds it to
// about 1/254 of its block's largest value, an error of the same order as
// the weights' own.

// q8Acts holds rows of x quantized for the integer kernels. For each
// group of 64 inputs (two blocks) each row has 256 bytes:
//
//	[0, 64)    the int8 values
//	[64, 128)  16 float32 lane scales: block 0's scale 8 times, then block 1's
//	[128, 192) 16 int32 corrections: -128 × the sum of each lane's 4 values
//	[192, 256) padding
//
// and the rows' groups lie side by side, group after group, so that a
// kernel reads any few rows' next 64 inputs from one pointer it moves by
// n×256 bytes. An odd last block fills half a group.
type q8Acts struct {
	buf  []uint64 // 8-byte aligned backing store
	n, k int
}

// groups returns the number of groups of 64 inputs in a row.
func (a *q8Acts) groups() int { return (a.k + 63) / 64 }

// stride is the distance in bytes from a row's group to its next.
func (a *q8Acts) stride() int { return a.n * 256 }

// row returns the bytes from row i's first group on.
func (a *q8Acts) row(i int) []byte {
	all := unsafe.Slice((*byte)(unsafe.Pointer(&a.buf[0])), len(a.buf)*8)
	return all[i*256:]
}

// reset sizes a for n rows of k inputs.
func (a *q8Acts) reset(n, k int) {
	a.n, a.k = n, k
	words := n * a.groups() * 256 / 8
	if cap(a.buf) < words {
		a.buf = make([]uint64, words)
	}
	a.buf = a.buf[:words]
}

var q8ActBufs = sync.Pool{New: func() any { return new(q8Acts) }}

// quantizeRow quantizes x (a multiple of Q8Block long) into rec, the layout
// above with groups stride bytes apart: per block, scale d = max|x|/127
// and values round(x · (1/d)) to nearest even, in [-127, 127] (all zero
// when d is 0 or subnormal: such a block's products are below 1e-36). A
// block holding an infinity or NaN gets the values 0 and the scale NaN,
// so that the products it enters are NaN, as they would be in float32.
// im's SIMD kernel, where it has one, gives the same bytes as the Go
// reference, quantizeBlocks.
func quantizeRow(im *impl, rec []byte, stride int, x []float32) {
	blocks := len(x) / Q8Block
	if blocks == 0 {
		return
	}
	if im.quantQ8 != nil {
		_ = rec[(blocks-1)/2*stride+192-1]
		im.quantQ8(unsafe.Pointer(&rec[0]), stride, &x[0], blocks)
	} else {
		quantizeBlocks(rec, stride, x)
	}
	if len(x)%64 != 0 { // the unused half of the last group
		g := len(x) / 64 * stride
		clear(rec[g+32 : g+64])
		clear(rec[g+96 : g+128])
		clear(rec[g+160 : g+192])
	}
}

// quantizeBlocks is quantizeRow in Go, without the clearing of an unused
// half group.
func quantizeBlocks(rec []byte, stride int, x []float32) {
	const magic = 1.5 * (1 << 23) // v + magic rounds v to an integer, ties to even, for |v| < 2^22
	for b := 0; b < len(x)/Q8Block; b++ {
		blk := (*[Q8Block]float32)(x[b*Q8Block:])
		g, h := b/2*stride, b%2*32 // the block's group and half
		q := (*[Q8Block]byte)(rec[g+h:])
		var amax uint32 // max |x| as bits: a NaN's exceed an infinity's
		for _, v := range blk {
			amax = max(amax, math.Float32bits(v)&^(1<<31))
		}
		lanes := (*[8]float32)(unsafe.Pointer(&rec[g+64+h]))
		corr := (*[8]int32)(unsafe.Pointer(&rec[g+128+h]))
		if amax >= 0x7f800000 { // NaN or infinity
			clear(q[:])
			clear(corr[:])
			for l := range lanes {
				lanes[l] = float32(math.NaN())
			}
			continue
		}
		d := math.Float32frombits(amax) / 127
		var inv float32
		if d >= 0x1p-126 { // normal: 1/d is finite
			inv = 1 / d
		}
		for l := range 8 {
			var sum int32
			for p := 4 * l; p < 4*l+4; p++ {
				// The conversion rounds the product before the add (no
				// fused multiply-add), as the SIMD kernels do. |x·inv| <=
				// 127 (and a few ulps): no clamping needed.
				v := int32(math.Float32bits(float32(blk[p]*inv)+magic)) - int32(math.Float32bits(magic))
				q[p] = byte(int8(v))
				sum += v
			}
			lanes[l] = d
			corr[l] = -128 * sum
		}
	}
}

// q8Block returns block b of a row's groups (stride bytes apart): its
// values and scale.
func q8Block(rec []byte, stride, b int) ([]byte, float32) {
	g, h := b/2*stride, b%2*32
	return rec[g+h : g+h+Q8Block], *(*float32)(unsafe.Pointer(&rec[g+64+h]))
}

// dotQ8Blocks adds blocks [b0, b1) of the integer dot product of a row of
// quantized x (its groups stride bytes apart) with the weights q (scales
// s, one per block) to acc, in block order.
func dotQ8Blocks(acc float32, rec []byte, stride int, q []int8, s []float32, b0, b1 int) float32 {
	for b := b0; b < b1; b++ {
		xq, sx := q8Block(rec, stride, b)
		wq := q[b*Q8Block : (b+1)*Q8Block]
		var dot int32
		for p, v := range wq {
			dot += int32(v) * int32(int8(xq[p]))
		}
		acc += float32(dot) * (s[b] * sx)
	}
	return acc
}

// q8Shape returns a q8_0 matrix's product shape: k inputs and m outputs,
// each output's weights a row of k values in memory (see Mat.T).
func (m *Mat) q8Shape() (k, out int) {
	if m.T {
		return m.Rows, m.Cols
	}
	return m.Cols, m.Rows
}

// matMulQ8 computes out[n, m] = x[n, k] · W + bias for a q8_0 matrix whose
// m rows of k weights each give one output: MatMul of a transposed (T)
// matrix, or MatMulT of one that is not. bias may be nil.
func matMulQ8(out, x []float32, n int, w *Mat, bias []float32) {
	k, m := w.q8Shape()
	_ = out[n*m-1]
	_ = x[n*k-1]
	if bias != nil {
		_ = bias[m-1]
	}
	acts := q8ActBufs.Get().(*q8Acts)
	acts.reset(n, k)
	qt := quantTasks.get()
	*qt = quantTask{im: active(), acts: acts, x: x}
	parallel(n, grain(1, 8*k), qt)
	quantTasks.put(qt)

	t := matMulQ8Tasks.get()
	*t = matMulQ8Task{im: active(), out: out, n: n, acts: acts, w: w, bias: bias}
	// Pieces claimed as threads come free balance threads of unequal
	// speed; each piece is still one run of memory, unlike MatMul's
	// column bands, so smaller pieces cost the stream nothing.
	parallelPieces(m, grain(16, n*k), balancePieces, t)
	matMulQ8Tasks.put(t)
	q8ActBufs.Put(acts)
}

type quantTask struct {
	im   *impl
	acts *q8Acts
	x    []float32
}

var quantTasks taskPool[quantTask]

func (t *quantTask) run(lo, hi int) {
	k := t.acts.k
	for i := lo; i < hi; i++ {
		quantizeRow(t.im, t.acts.row(i), t.acts.stride(), t.x[i*k:(i+1)*k])
	}
}

type matMulQ8Task struct {
	im   *impl
	out  []float32
	n    int
	acts *q8Acts
	w    *Mat
	bias []float32
}

var matMulQ8Tasks taskPool[matMulQ8Task]

// run computes outputs [lo, hi) of every row, a chunk of weight rows at a
// time so that the chunk stays in cache across the rows of x: rows of x a
// tile at a time where the implementation has a tile kernel, the rest one
// by one, each output by the same operations either way.
func (t *matMulQ8Task) run(lo, hi int) {
	im := t.im
	k, m := t.w.q8Shape()
	blocks := k / Q8Block
	stride := t.acts.stride()
	kv := 0 // inputs the kernels take; the blocks past it are added in Go
	if im.dotQ8Q8 != nil {
		kv = k - k%64
	}
	for j0 := lo; j0 < hi; j0 += dotChunk {
		j1 := min(j0+dotChunk, hi)
		w, s := unsafe.Pointer(&t.w.Q8[j0*k]), &t.w.Scales[j0*blocks]
		i := 0
		if kv > 0 {
			if mx := im.q8TileMX; mx > 0 {
				for ; i+mx <= t.n; i += mx {
					im.dotQ8Q8Tile(&t.out[i*m+j0], 4*m, unsafe.Pointer(&t.acts.row(i)[0]), stride, w, k, kv, j1-j0, s, 4*blocks)
				}
			}
			for ; i < t.n; i++ {
				im.dotQ8Q8(&t.out[i*m+j0], 4*m, unsafe.Pointer(&t.acts.row(i)[0]), stride, w, k, kv, j1-j0, s, 4*blocks)
			}
		}
		if kv == k && t.bias == nil {
			continue // the kernels did it all
		}
		for i := 0; i < t.n; i++ {
			rec := t.acts.row(i)
			o := t.out[i*m+j0 : i*m+j1]
			if kv == 0 {
				clear(o)
			}
			for j := j0; j < j1; j++ {
				if kv < k {
					o[j-j0] = dotQ8Blocks(o[j-j0], rec, stride, t.w.Q8[j*k:(j+1)*k], t.w.Scales[j*blocks:(j+1)*blocks], kv/Q8Block, blocks)
				}
				if t.bias != nil {
					o[j-j0] += t.bias[j]
				}
			}
		}
	}
}
