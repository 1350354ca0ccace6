// Package le decodes little-endian tensor data, as stored by the model
// formats, into Go slices: without copying where the machine's layout
// allows, by converting otherwise.
package le

import (
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/gpt2go/gpt2/format/half"
)

// nativeLittleEndian reports whether in-memory numbers have the files'
// byte order, which views require.
var nativeLittleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// view reinterprets b as a []T without copying when the machine is
// little-endian and b is suitably aligned. The result is never nil.
func view[T float32 | uint16](b []byte) ([]T, bool) {
	var zero T
	size := int(unsafe.Sizeof(zero))
	if len(b) == 0 {
		return []T{}, true
	}
	if !nativeLittleEndian || uintptr(unsafe.Pointer(&b[0]))%uintptr(size) != 0 {
		return nil, false
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&b[0])), len(b)/size), true
}

// Float32 returns b's float32 elements: a view of b if possible (see
// package doc), else a copy. len(b) must be a multiple of 4.
func Float32(b []byte) []float32 {
	if v, ok := view[float32](b); ok {
		return v
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

// Uint16 returns b's uint16 elements: a view of b if possible, else a
// copy. len(b) must be even.
func Uint16(b []byte) []uint16 {
	if v, ok := view[uint16](b); ok {
		return v
	}
	out := make([]uint16, len(b)/2)
	for i := range out {
		out[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return out
}

// F16ToFloat32 converts IEEE binary16 elements to a new float32 slice.
func F16ToFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = half.F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// BF16ToFloat32 converts bfloat16 elements to a new float32 slice.
func BF16ToFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/2)
	for i := range out {
		out[i] = half.BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
	}
	return out
}

// F64ToFloat32 converts float64 elements to a new float32 slice, rounding
// to nearest.
func F64ToFloat32(b []byte) []float32 {
	out := make([]float32, len(b)/8)
	for i := range out {
		out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
	}
	return out
}
