package sample

import (
	"math"

	"github.com/gpt2go/gpt2/kernels"
)

// Sampling a token and scoring it come down to exponentials of the
// logits, tens of thousands per token, a cost that batching cannot share.
// math.Exp handles every input and rounds correctly; the exponentials
// here only see differences of logits, mostly in [-708, 0] (a logit minus
// the largest), where a table of 2^(j/1024) and a cubic polynomial are
// three times faster and within 1e-15 + 1.5e-16*|d| of e^d, relatively:
// exact to float64 rounding for the largest terms, which dominate every
// sum taken here.

const (
	expTableBits = 10
	expTableMask = 1<<expTableBits - 1
	expScale     = (1 << expTableBits) / math.Ln2 // e^d = 2^(d*expScale / 1024)
	expStep      = math.Ln2 / (1 << expTableBits)
	// expShift, added to a float64 below 2^51 in magnitude, rounds it to
	// an integer held in the low bits.
	expShift  = 0x1.8p52
	expLowest = -708 // e^-708 is still a normal float64
)

// expTable holds the bits of 2^(j/1024).
var expTable = func() (t [1 << expTableBits]uint64) {
	for j := range t {
		t[j] = math.Float64bits(math.Exp2(float64(j) / (1 << expTableBits)))
	}
	return t
}()

// expNonPos returns e^d for d <= 0 (see above); below -708, and for -Inf
// and NaN, it returns 0. Positive arguments up to 708 work too, as
// accurately. It is small enough to be inlined.
func expNonPos(d float64) float64 {
	if !(d >= expLowest) {
		return 0
	}
	// d = (k/1024) ln 2 + r with k an integer and |r| <= ln(2)/2048, so
	// e^d = 2^(k>>10) * 2^((k&1023)/1024) * e^r, and the cubic leaves out
	// r^4/24 < 6e-16. The high part of k is added to the table entry's
	// exponent field modulo 2^12, which works for negative k too, and
	// the bounds on d keep the result a normal number.
	t := d*expScale + expShift
	k := math.Float64bits(t)
	r := d - (t-expShift)*expStep
	p := 1 + r*(1+r*(0.5+r*(1.0/6)))
	return math.Float64frombits(expTable[k&expTableMask]+(k>>expTableBits)<<52) * p
}

// expSum returns the sum of e^((z[i]-hi)*inv) for hi >= every z[i] and
// inv > 0; NaN counts as -Inf. Four partial sums let the exponentials
// overlap.
func expSum(z []float32, hi, inv float64) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(z); i += 4 {
		y := z[i : i+4 : i+4]
		s0 += expNonPos((float64(y[0]) - hi) * inv)
		s1 += expNonPos((float64(y[1]) - hi) * inv)
		s2 += expNonPos((float64(y[2]) - hi) * inv)
		s3 += expNonPos((float64(y[3]) - hi) * inv)
	}
	for ; i < len(z); i++ {
		s0 += expNonPos((float64(z[i]) - hi) * inv)
	}
	return (s0 + s1) + (s2 + s3)
}

// expSumAbove returns the sum of e^(z[i]-a), for a finite a, and whether
// every z[i] is at most 700 above a (and none is NaN). Above 0 the
// exponentials lose no accuracy, and expNonPos handles them up to 708.
func expSumAbove(z []float32, a float64) (float64, bool) {
	if math.IsInf(a, 0) || a != a {
		return 0, false
	}
	hi := float32(a)
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(z); i += 4 {
		y := z[i : i+4 : i+4]
		hi = max(hi, y[0], y[1], y[2], y[3]) // NaN if any is
		s0 += expNonPos(float64(y[0]) - a)
		s1 += expNonPos(float64(y[1]) - a)
		s2 += expNonPos(float64(y[2]) - a)
		s3 += expNonPos(float64(y[3]) - a)
	}
	for ; i < len(z); i++ {
		hi = max(hi, z[i])
		s0 += expNonPos(float64(z[i]) - a)
	}
	return (s0 + s1) + (s2 + s3), float64(hi)-a <= 700
}

// Top-p histograms the weights of the vocabulary by tempered logit (the
// argument of the exponential), in steps of 1/nucleusStep down to
// -(nucleusBuckets-1)/nucleusStep, where weights are below 1e-27.
const (
	nucleusStep    = 8
	nucleusBuckets = 512
)

// expSumHist is expSum, adding each weight to hist[j] for its argument d
// in (-(j+1)/nucleusStep, -j/nucleusStep], or to the last bucket.
func expSumHist(z []float32, hi, inv float64, hist *[nucleusBuckets]float64) float64 {
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(z); i += 2 {
		d0 := (float64(z[i]) - hi) * inv
		d1 := (float64(z[i+1]) - hi) * inv
		e0, e1 := expNonPos(d0), expNonPos(d1)
		s0 += e0
		s1 += e1
		hist[bucket(d0)] += e0
		hist[bucket(d1)] += e1
	}
	for ; i < len(z); i++ {
		d := (float64(z[i]) - hi) * inv
		e := expNonPos(d)
		s0 += e
		hist[bucket(d)] += e
	}
	return s0 + s1
}

// bucket returns the histogram bucket of an argument d <= 0 (NaN and
// -Inf go to the last).
func bucket(d float64) int {
	b := -d * nucleusStep
	if !(b < nucleusBuckets-1) {
		return nucleusBuckets - 1
	}
	return int(b)
}

// expFill sets w[i] = e^((z[i]-hi)*inv), as expSum, and returns their sum.
func expFill(w []float64, z []float32, hi, inv float64) float64 {
	w = w[:len(z)]
	var s0, s1 float64
	i := 0
	for ; i+2 <= len(z); i += 2 {
		a := expNonPos((float64(z[i]) - hi) * inv)
		b := expNonPos((float64(z[i+1]) - hi) * inv)
		w[i], w[i+1] = a, b
		s0 += a
		s1 += b
	}
	for ; i < len(z); i++ {
		w[i] = expNonPos((float64(z[i]) - hi) * inv)
		s0 += w[i]
	}
	return s0 + s1
}

// argmax returns the index of the largest value of z, the lowest such
// index on ties; NaN counts as -Inf, and if nothing is larger than -Inf it
// returns 0.
func argmax(z []float32) int {
	// The vector maximum passes over NaN and is -Inf only if nothing is
	// larger; then the first index that holds it.
	best := kernels.Max(z)
	if math.IsInf(float64(best), -1) {
		return 0 // nothing above -Inf
	}
	for i, v := range z {
		if v == best {
			return i
		}
	}
	return 0
}
