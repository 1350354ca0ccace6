package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/gpt2go/gpt2/format/half"
)

// DType is the storage type of a weight matrix.
type DType uint8

const (
	F32 DType = iota
	F16
	BF16
	Q8_0
)

func (d DType) String() string {
	switch d {
	case F32:
		return "f32"
	case F16:
		return "f16"
	case BF16:
		return "bf16"
	case Q8_0:
		return "q8_0"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType parses a name as String writes it.
func ParseDType(s string) (DType, error) {
	for _, d := range []DType{F32, F16, BF16, Q8_0} {
		if s == d.String() {
			return d, nil
		}
	}
	return 0, fmt.Errorf("unknown weight type %q (want f32, f16, bf16 or q8_0)", s)
}

// Q8Block is the number of consecutive values of a row that share one
// scale in Q8_0 storage.
const Q8Block = 32

// Mat is a Rows x Cols weight matrix stored row-major. The data field that
// is set depends on DType:
//
//   - F32: F32.
//   - F16, BF16: U16, the raw 16-bit values, converted to float32 in
//     registers as the kernels read them.
//   - Q8_0: Q8 holds int8 values and Scales one float32 per block of
//     Q8Block consecutive values of a row (Rows x Cols/Q8Block, row-major);
//     the value at (i, j) is float32(Q8[i*Cols+j]) * Scales[i*Cols/32+j/32],
//     rounded once to float32. Cols must be a multiple of Q8Block.
//
// The blocks run along rows, the contiguous axis: for a weight in the
// [in, out] layout that is the output axis, so the decode kernel applies
// one scale per 32 outputs of an input row; for the [out, in] token
// embedding it is the input axis, so each dot product takes one scale per
// 32 inputs. Keeping weights in their stored type, rather than expanding
// them to float32, is what lets decode run at memory bandwidth.
//
// A Q8_0 matrix may instead be stored transposed (T): Q8 holds the
// Cols x Rows transpose row-major, with its blocks along Rows, and Scales
// is Cols x Rows/32; the value at (i, j) is Q8[j*Rows+i] *
// Scales[j*Rows/32+i/32]. For a weight in the [in, out] layout that puts
// each output's weights in one row of memory and the blocks along the
// input axis, as GGUF stores Q8_0, which is what lets MatMul multiply
// them in integers (see q8.go). Rows must then be a multiple of Q8Block.
type Mat struct {
	Rows, Cols int
	DType      DType
	F32        []float32
	U16        []uint16
	Q8         []int8
	Scales     []float32
	T          bool
}

// NewMat wraps float32 data as a Rows x Cols matrix.
func NewMat(rows, cols int, data []float32) Mat {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("kernels: NewMat %dx%d with %d values", rows, cols, len(data)))
	}
	return Mat{Rows: rows, Cols: cols, DType: F32, F32: data}
}

// NewMat16 wraps F16 or BF16 data as a Rows x Cols matrix.
func NewMat16(rows, cols int, dt DType, data []uint16) (Mat, error) {
	if dt != F16 && dt != BF16 {
		return Mat{}, fmt.Errorf("NewMat16: type %v is not 16-bit", dt)
	}
	if len(data) != rows*cols {
		return Mat{}, fmt.Errorf("%v matrix %dx%d with %d values", dt, rows, cols, len(data))
	}
	return Mat{Rows: rows, Cols: cols, DType: dt, U16: data}, nil
}

// NewMatQ8 wraps Q8_0 values and their scales as a Rows x Cols matrix.
func NewMatQ8(rows, cols int, q []int8, scales []float32) (Mat, error) {
	switch {
	case cols%Q8Block != 0:
		return Mat{}, fmt.Errorf("q8_0 matrix %dx%d: columns are not a multiple of %d", rows, cols, Q8Block)
	case len(q) != rows*cols:
		return Mat{}, fmt.Errorf("q8_0 matrix %dx%d with %d values", rows, cols, len(q))
	case len(scales) != rows*cols/Q8Block:
		return Mat{}, fmt.Errorf("q8_0 matrix %dx%d with %d scales, want %d", rows, cols, len(scales), rows*cols/Q8Block)
	}
	return Mat{Rows: rows, Cols: cols, DType: Q8_0, Q8: q, Scales: scales}, nil
}

// NewMatQ8T wraps Q8_0 values stored transposed (see Mat.T), q and scales
// as [cols, rows] and [cols, rows/32], as a Rows x Cols matrix.
func NewMatQ8T(rows, cols int, q []int8, scales []float32) (Mat, error) {
	t, err := NewMatQ8(cols, rows, q, scales)
	if err != nil {
		return Mat{}, fmt.Errorf("transposed %w", err)
	}
	return Mat{Rows: rows, Cols: cols, DType: Q8_0, Q8: t.Q8, Scales: t.Scales, T: true}, nil
}

// Row writes row i of m, as float32, into dst[:m.Cols].
func (m *Mat) Row(dst []float32, i int) {
	c := m.Cols
	dst = dst[:c]
	switch m.DType {
	case F32:
		copy(dst, m.F32[i*c:(i+1)*c])
	case F16:
		for j, h := range m.U16[i*c : (i+1)*c] {
			dst[j] = half.F16ToF32(h)
		}
	case BF16:
		for j, h := range m.U16[i*c : (i+1)*c] {
			dst[j] = half.BF16ToF32(h)
		}
	case Q8_0:
		if m.T {
			m.rowSpan(dst, i, 0, c)
			return
		}
		q := m.Q8[i*c : (i+1)*c]
		s := m.Scales[i*c/Q8Block : (i+1)*c/Q8Block]
		for j, v := range q {
			dst[j] = float32(v) * s[j/Q8Block]
		}
	}
}

// rowSpan writes columns [lo, hi) of row i of m, as float32, into dst.
func (m *Mat) rowSpan(dst []float32, i, lo, hi int) {
	c := m.Cols
	dst = dst[:hi-lo]
	switch m.DType {
	case F32:
		copy(dst, m.F32[i*c+lo:i*c+hi])
	case F16:
		for j, h := range m.U16[i*c+lo : i*c+hi] {
			dst[j] = half.F16ToF32(h)
		}
	case BF16:
		for j, h := range m.U16[i*c+lo : i*c+hi] {
			dst[j] = half.BF16ToF32(h)
		}
	case Q8_0:
		if m.T {
			r, blocks := m.Rows, m.Rows/Q8Block
			for j := lo; j < hi; j++ {
				dst[j-lo] = float32(m.Q8[j*r+i]) * m.Scales[j*blocks+i/Q8Block]
			}
			return
		}
		for j, v := range m.Q8[i*c+lo : i*c+hi] {
			dst[j] = float32(v) * m.Scales[(i*c+lo+j)/Q8Block]
		}
	}
}

// Bytes is the number of bytes the matrix occupies in memory.
func (m *Mat) Bytes() int64 {
	return int64(len(m.F32))*4 + int64(len(m.U16))*2 + int64(len(m.Q8)) + int64(len(m.Scales))*4
}

// Float32 returns the matrix as float32 values: its own data for F32, a
// new slice otherwise.
func (m *Mat) Float32() []float32 {
	if m.DType == F32 {
		return m.F32
	}
	out := make([]float32, m.Rows*m.Cols)
	for i := range m.Rows {
		m.Row(out[i*m.Cols:], i)
	}
	return out
}

// Convert returns the matrix stored as dt: F16 and BF16 round to nearest
// even; Q8_0 quantizes each block of 32 values of a row with the scale
// max|v|/127 and rounds to nearest (as GGUF's Q8_0 does). Converting to
// the matrix's own type returns it unchanged.
func (m *Mat) Convert(dt DType) (Mat, error) {
	if dt == m.DType {
		return *m, nil
	}
	v := m.Float32()
	switch dt {
	case F32:
		return NewMat(m.Rows, m.Cols, v), nil
	case F16, BF16:
		to := half.F32ToF16
		if dt == BF16 {
			to = half.F32ToBF16
		}
		u := make([]uint16, len(v))
		for i, f := range v {
			u[i] = to(f)
		}
		return NewMat16(m.Rows, m.Cols, dt, u)
	case Q8_0:
		if m.Cols%Q8Block != 0 {
			return Mat{}, fmt.Errorf("quantize %dx%d matrix to q8_0: columns are not a multiple of %d", m.Rows, m.Cols, Q8Block)
		}
		q, s := QuantizeQ8(v)
		return NewMatQ8(m.Rows, m.Cols, q, s)
	}
	return Mat{}, fmt.Errorf("convert to %v: unknown type", dt)
}

// ConvertQ8T returns the matrix as Q8_0 stored transposed (see Mat.T): the
// blocks of 32 run down its columns. Rows must be a multiple of Q8Block.
func (m *Mat) ConvertQ8T() (Mat, error) {
	if m.DType == Q8_0 && m.T {
		return *m, nil
	}
	if m.Rows%Q8Block != 0 {
		return Mat{}, fmt.Errorf("quantize %dx%d matrix to transposed q8_0: rows are not a multiple of %d", m.Rows, m.Cols, Q8Block)
	}
	v := m.Float32()
	t := make([]float32, len(v))
	for i := range m.Rows {
		for j := range m.Cols {
			t[j*m.Rows+i] = v[i*m.Cols+j]
		}
	}
	q, s := QuantizeQ8(t)
	return NewMatQ8T(m.Rows, m.Cols, q, s)
}

// QuantizeQ8 quantizes v (a multiple of Q8Block long) block by block:
// scale = max|v|/127 and q = round(v/scale), ties away from zero.
func QuantizeQ8(v []float32) ([]int8, []float32) {
	q := make([]int8, len(v))
	s := make([]float32, len(v)/Q8Block)
	for b := range s {
		blk := v[b*Q8Block : (b+1)*Q8Block]
		var amax float32
		for _, f := range blk {
			amax = max(amax, float32(math.Abs(float64(f))))
		}
		d := amax / 127
		s[b] = d
		if d == 0 {
			continue
		}
		inv := 1 / d
		for j, f := range blk {
			q[b*Q8Block+j] = int8(max(-127, min(127, math.Round(float64(f*inv)))))
		}
	}
	return q, s
}

// ptr returns the address of element (i, j) and, for Q8_0, of its scale,
// with the row strides in bytes. j must be a multiple of Q8Block for Q8_0,
// and m not transposed (whose products matMulQ8 computes).
func (m *Mat) ptr(i, j int) (w unsafe.Pointer, ldw int, s *float32, lds int) {
	c := m.Cols
	switch m.DType {
	case F32:
		return unsafe.Pointer(&m.F32[i*c+j]), 4 * c, nil, 0
	case F16, BF16:
		return unsafe.Pointer(&m.U16[i*c+j]), 2 * c, nil, 0
	default:
		return unsafe.Pointer(&m.Q8[i*c+j]), c, &m.Scales[(i*c+j)/Q8Block], 4 * (c / Q8Block)
	}
}

// check panics with a clear message if m's data does not match its shape;
// a malformed matrix is a programming error, not bad input.
func (m *Mat) check() {
	n := m.Rows * m.Cols
	ok := false
	switch m.DType {
	case F32:
		ok = len(m.F32) == n
	case F16, BF16:
		ok = len(m.U16) == n
	case Q8_0:
		in := m.Cols
		if m.T {
			in = m.Rows
		}
		ok = len(m.Q8) == n && in%Q8Block == 0 && len(m.Scales) == n/Q8Block
	}
	ok = ok && (!m.T || m.DType == Q8_0)
	if !ok {
		panic(fmt.Sprintf("kernels: malformed %v matrix %dx%d", m.DType, m.Rows, m.Cols))
	}
}
