package half

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

// refF16 is the value of binary16 bits h, computed from the definition.
func refF16(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0x1f:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	case 0:
		return sign * math.Ldexp(mant, -24)
	default:
		return sign * math.Ldexp(1+mant/1024, exp-15)
	}
}

func TestF16ToF32Exhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := refF16(h)
		if math.IsNaN(want) {
			if !math.IsNaN(float64(got)) {
				t.Fatalf("F16ToF32(%#04x) = %v, want NaN", h, got)
			}
			continue
		}
		if float64(got) != want || math.Signbit(float64(got)) != (h&0x8000 != 0) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestF16RoundTripExhaustive(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F32ToF16(F16ToF32(h))
		isNaN := h&0x7c00 == 0x7c00 && h&0x3ff != 0
		if isNaN {
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 || got&0x8000 != h&0x8000 {
				t.Fatalf("NaN %#04x round-tripped to %#04x", h, got)
			}
			if got != h|0x200 {
				t.Fatalf("NaN %#04x round-tripped to %#04x, want payload kept", h, got)
			}
			continue
		}
		if got != h {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, got)
		}
	}
}

// refF32ToF16 finds the nearest binary16 value by search, ties to even.
func refF32ToF16(f float32, table []float64) uint16 {
	x := float64(f)
	var sign uint16
	if math.Signbit(x) {
		sign = 0x8000
		x = -x
	}
	// table[i] is the value of bits i for i <= 0x7c00, where 0x7c00 stands
	// for 2^16, the next value after the largest finite one; rounding to
	// it means overflow to Inf.
	if x >= table[0x7c00] {
		return sign | 0x7c00
	}
	i := sort.SearchFloat64s(table, x) // first index with table[i] >= x
	if table[i] == x {
		return sign | uint16(i)
	}
	lo, hi := i-1, i
	dlo, dhi := x-table[lo], table[hi]-x
	switch {
	case dlo < dhi:
		return sign | uint16(lo)
	case dhi < dlo:
		return sign | uint16(hi)
	case lo&1 == 0:
		return sign | uint16(lo)
	default:
		return sign | uint16(hi)
	}
}

func TestF32ToF16Nearest(t *testing.T) {
	table := make([]float64, 0x7c01)
	for i := range 0x7c00 {
		table[i] = refF16(uint16(i))
	}
	table[0x7c00] = 65536

	check := func(f float32) {
		t.Helper()
		if math.IsNaN(float64(f)) {
			return
		}
		if got, want := F32ToF16(f), refF32ToF16(f, table); got != want {
			t.Fatalf("F32ToF16(%v [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}

	// Every binary16 value, the midpoints between neighbours (exact ties)
	// and the float32 values right next to those midpoints.
	for i := range 0x7c00 {
		for _, s := range []float64{1, -1} {
			v := s * table[i]
			mid := s * (table[i] + table[i+1]) / 2
			for _, x := range []float64{v, mid} {
				f := float32(x)
				check(f)
				check(math.Nextafter32(f, float32(math.Inf(1))))
				check(math.Nextafter32(f, float32(math.Inf(-1))))
			}
		}
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.MaxFloat32, -math.MaxFloat32, math.SmallestNonzeroFloat32, 65504, 65519.99, 65520, 1e-8, 2.98e-8, 2.9802322e-8} {
		check(f)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		check(math.Float32frombits(r.Uint32()))
	}
	// Concentrate on the binary16 range, where rounding is interesting.
	for range 1_000_000 {
		check(math.Float32frombits(r.Uint32N(0x47800000-0x33000000) + 0x33000000))
	}
}

func TestF32ToF16Special(t *testing.T) {
	tests := []struct {
		in   float32
		want uint16
	}{
		{0, 0},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{65504, 0x7bff},
		{65520, 0x7c00},
		{65519, 0x7bff},
		{float32(math.Inf(1)), 0x7c00},
		{float32(math.Inf(-1)), 0xfc00},
		{5.960464477539063e-08, 0x0001}, // smallest subnormal
		{2.980232238769531e-08, 0x0000}, // exactly half of it: tie to even (0)
		{2.9802326e-08, 0x0001},         // just above half
		{6.097555160522461e-05, 0x03ff}, // largest subnormal
		{6.103515625e-05, 0x0400},       // smallest normal
		{0.1, 0x2e66},
		{math.Float32frombits(0x7f800001), 0x7e00}, // NaN with low payload stays NaN
	}
	for _, tt := range tests {
		if got := F32ToF16(tt.in); got != tt.want {
			t.Errorf("F32ToF16(%v) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
}

func refF32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := b & 0x80000000
	mag := b &^ 0x80000000
	lo := mag &^ 0xffff
	hi := lo + 0x10000
	val := func(bits uint32) float64 {
		if bits == 0x7f800000 {
			return math.Ldexp(1, 128) // the value overflow rounds to
		}
		return float64(math.Float32frombits(bits))
	}
	x := float64(math.Float32frombits(mag))
	dlo, dhi := x-val(lo), val(hi)-x
	var r uint32
	switch {
	case dlo < dhi:
		r = lo
	case dhi < dlo:
		r = hi
	case (lo>>16)&1 == 0:
		r = lo
	default:
		r = hi
	}
	return uint16((sign | r) >> 16)
}

func TestBF16(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Fatalf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(f))
		}
		if got := F32ToBF16(f); got != h && !math.IsNaN(float64(f)) {
			t.Fatalf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, got)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for n := range 2_000_000 {
		b := r.Uint32()
		if n%4 == 0 {
			b = b&^0xffff | 0x8000 // exact ties
		}
		f := math.Float32frombits(b)
		if math.IsNaN(float64(f)) {
			got := F32ToBF16(f)
			if !math.IsNaN(float64(BF16ToF32(got))) || got&0x8000 != uint16(b>>16)&0x8000 {
				t.Fatalf("F32ToBF16(NaN %#08x) = %#04x", b, got)
			}
			continue
		}
		if got, want := F32ToBF16(f), refF32ToBF16(f); got != want {
			t.Fatalf("F32ToBF16(%#08x) = %#04x, want %#04x", b, got, want)
		}
	}
	if got := F32ToBF16(math.MaxFloat32); got != 0x7f80 {
		t.Errorf("F32ToBF16(MaxFloat32) = %#04x, want Inf", got)
	}
	if got := F32ToBF16(math.Float32frombits(0x7f800001)); got != 0x7fc0 {
		t.Errorf("F32ToBF16(NaN with low payload) = %#04x, want 0x7fc0", got)
	}
}

func BenchmarkF32ToF16(b *testing.B) {
	var s uint16
	for i := range b.N {
		s += F32ToF16(float32(i) * 1e-3)
	}
	_ = s
}
