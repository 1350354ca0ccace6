package le

import (
	"encoding/binary"
	"math"
	"slices"
	"testing"
	"unsafe"

	"github.com/gpt2go/gpt2/format/half"
)

func TestFloat32(t *testing.T) {
	want := []float32{1, -2, float32(math.Inf(1)), 3.5}
	backing := make([]uint64, 4) // 8-aligned
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&backing[0])), 32)
	for shift := range 4 {
		b := raw[shift : shift+16]
		for i, v := range want {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
		}
		got := Float32(b)
		if !slices.Equal(got, want) {
			t.Fatalf("shift %d: %v", shift, got)
		}
		isView := unsafe.Pointer(&got[0]) == unsafe.Pointer(&b[0])
		if want := shift == 0 && nativeLittleEndian; isView != want {
			t.Errorf("shift %d: view %v, want %v", shift, isView, want)
		}
		u := Uint16(b)
		if len(u) != 8 || u[1] != binary.LittleEndian.Uint16(b[2:]) {
			t.Errorf("shift %d: Uint16 = %v", shift, u)
		}
	}
	if v := Float32(nil); v == nil || len(v) != 0 {
		t.Errorf("Float32(nil) = %#v, want empty non-nil", v)
	}
}

func TestConvert(t *testing.T) {
	vals := []float32{0, 1, -0.5, 65504, float32(math.Inf(-1))}
	f16 := make([]byte, 2*len(vals))
	bf16 := make([]byte, 2*len(vals))
	f64 := make([]byte, 8*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint16(f16[2*i:], half.F32ToF16(v))
		binary.LittleEndian.PutUint16(bf16[2*i:], half.F32ToBF16(v))
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(float64(v)))
	}
	if got := F16ToFloat32(f16); !slices.Equal(got, vals) {
		t.Errorf("F16ToFloat32 = %v", got)
	}
	wantBF := slices.Clone(vals)
	wantBF[3] = 65536 // 65504 rounds to 65536 in bfloat16
	if got := BF16ToFloat32(bf16); !slices.Equal(got, wantBF) {
		t.Errorf("BF16ToFloat32 = %v", got)
	}
	if got := F64ToFloat32(f64); !slices.Equal(got, vals) {
		t.Errorf("F64ToFloat32 = %v", got)
	}
}
