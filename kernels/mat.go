package kernels

import "fmt"

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

// Mat is a Rows x Cols weight matrix stored row-major. Exactly one of the
// data fields is set, according to DType. Keeping the weights in their
// stored type (rather than expanding them to float32) is what lets decode
// run at memory bandwidth.
type Mat struct {
	Rows, Cols int
	DType      DType
	F32        []float32
}

// NewMat wraps float32 data as a Rows x Cols matrix.
func NewMat(rows, cols int, data []float32) Mat {
	if len(data) != rows*cols {
		panic(fmt.Sprintf("kernels: NewMat %dx%d with %d values", rows, cols, len(data)))
	}
	return Mat{Rows: rows, Cols: cols, DType: F32, F32: data}
}

// Row writes row i of m, as float32, into dst[:m.Cols].
func (m *Mat) Row(dst []float32, i int) {
	copy(dst[:m.Cols], m.F32[i*m.Cols:(i+1)*m.Cols])
}

// Bytes is the number of bytes the matrix occupies in memory.
func (m *Mat) Bytes() int64 {
	return int64(len(m.F32)) * 4
}
