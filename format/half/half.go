// Package half converts between float32 and the two 16-bit floating-point
// formats found in model files: IEEE 754 binary16 ("F16", "fp16") and
// bfloat16 ("BF16").
//
// Conversions to float32 are exact. Conversions from float32 round to the
// nearest representable value, ties to even, which is what hardware and
// PyTorch do, so values written by this package match theirs bit for bit.
// NaNs stay NaNs (their sign and the top bits of their payload are kept and
// the result is always a quiet NaN); infinities and signed zeros are kept.
package half

import "math"

// F16ToF32 returns the float32 equal to the IEEE 754 binary16 value h.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch exp {
	case 0x1f: // Inf or NaN: widen the payload.
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case 0:
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal in binary16 but normal in float32: shift the leading
		// one into the implicit-bit position and adjust the exponent.
		e := uint32(127 - 15 + 1)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	default:
		return math.Float32frombits(sign | (exp+127-15)<<23 | mant<<13)
	}
}

// F32ToF16 returns the IEEE 754 binary16 value nearest to f, ties to even.
// Values too large for binary16 become ±Inf and values too small become ±0.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	mant := b & 0x7fffff

	if exp == 0xff {
		if mant == 0 {
			return sign | 0x7c00 // Inf
		}
		// Keep the top payload bits and force the quiet bit, so a NaN
		// whose payload lives only in the low 13 bits stays a NaN.
		return sign | 0x7c00 | 0x200 | uint16(mant>>13)
	}

	e := exp - 127 + 15 // binary16 biased exponent
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// The result is subnormal (or zero): its mantissa is the full
		// significand, implicit bit included, shifted right by 14-e.
		shift := uint32(14 - e)
		if shift > 24 {
			// Below half the smallest subnormal: rounds to zero.
			return sign
		}
		full := mant | 0x800000
		m := full >> shift
		rem := full & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rem > halfway || (rem == halfway && m&1 == 1) {
			m++ // may carry into the smallest normal, which encodes correctly
		}
		return sign | uint16(m)
	}

	h := uint32(e)<<10 | mant>>13
	rem := mant & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // a carry out of the mantissa bumps the exponent, up to Inf
	}
	return sign | uint16(h)
}

// BF16ToF32 returns the float32 equal to the bfloat16 value h.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 returns the bfloat16 value nearest to f, ties to even.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		// NaN: truncating could clear every payload bit and yield Inf.
		return uint16(b>>16) | 0x40
	}
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}
