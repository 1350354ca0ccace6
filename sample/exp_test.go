package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestExpNonPos(t *testing.T) {
	for i := range 1_000_000 {
		d := -708 + 1416*float64(i)/1e6 // [-708, 708)
		want := math.Exp(d)
		got := expNonPos(d)
		if tol := (1e-15 + 1.5e-16*math.Abs(d)) * want; math.Abs(got-want) > tol {
			t.Fatalf("e^%v = %v, want %v (relative error %.2g)", d, got, want, math.Abs(got-want)/want)
		}
	}
	for _, d := range []float64{0, -1e-300, -math.SmallestNonzeroFloat64} {
		if got := expNonPos(d); got != 1 {
			t.Errorf("e^%v = %v, want 1", d, got)
		}
	}
	for _, d := range []float64{-708.5, -1e300, math.Inf(-1), math.NaN()} {
		if got := expNonPos(d); got != 0 {
			t.Errorf("e^%v = %v, want 0", d, got)
		}
	}
}

// lseRef is LogSumExp the plain way, with math.Exp.
func lseRef(x []float32) float64 {
	hi := math.Inf(-1)
	for _, v := range x {
		hi = max(hi, float64(v))
	}
	if math.IsInf(hi, 0) || math.IsNaN(hi) {
		return hi
	}
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - hi)
	}
	return hi + math.Log(s)
}

// TestLogSumExpAccuracy checks LogSumExp and Logprob against math.Exp on
// vocabulary-sized vectors, at the scale of GPT-2's logits and beyond,
// and scoring tokens far below the largest (Logprob's other path).
func TestLogSumExpAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, c := range []struct{ scale, offset float64 }{{3, 0}, {3, -80}, {0.01, 0}, {30, 5000}, {200, 0}} {
		x := make([]float32, 50257)
		for i := range x {
			x[i] = float32(c.offset + c.scale*rng.NormFloat64())
		}
		x[77] += float32(c.scale * 3) // a clear favourite
		want := lseRef(x)
		if got := LogSumExp(x); math.Abs(got-want) > 1e-12*max(1, math.Abs(want)) {
			t.Errorf("scale %g offset %g: LogSumExp %.17g, want %.17g", c.scale, c.offset, got, want)
		}
		for _, id := range []int{77, 0, 1234, argmaxF32(x), slices.Index(x, slices.Min(x))} {
			want := float64(x[id]) - want
			if got := Logprob(x, id); math.Abs(got-want) > 1e-12*max(1, math.Abs(want)) {
				t.Errorf("scale %g offset %g: Logprob(%d) %.17g, want %.17g", c.scale, c.offset, id, got, want)
			}
		}
	}
}

func TestLogSumExpSpecial(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, x := range [][]float32{
		nil,
		{-inf, -inf},
		{1, inf, 2},
		{1, nan, 2},
		{nan, 1},
		{inf, nan},
		{-inf, 0},
		{0, 1000},     // Logprob(0) falls back: 1000 is too far above
		{-3e38, 3e38}, // and so is this
	} {
		want := lseRef(x)
		got := LogSumExp(x)
		if !(got == want || math.IsNaN(got) && math.IsNaN(want) || math.Abs(got-want) < 1e-12*math.Abs(want)) {
			t.Errorf("LogSumExp(%v) = %v, want %v", x, got, want)
		}
		for id := range x {
			want := float64(x[id]) - want
			got := Logprob(x, id)
			if !(got == want || math.IsNaN(got) && math.IsNaN(want) || math.Abs(got-want) < 1e-12*max(1, math.Abs(want))) {
				t.Errorf("Logprob(%v, %d) = %v, want %v", x, id, got, want)
			}
		}
	}
}

func BenchmarkLogprob(b *testing.B) {
	x := benchLogits()
	b.Run("LogSumExp", func(b *testing.B) {
		for b.Loop() {
			LogSumExp(x)
		}
	})
	b.Run("Logprob", func(b *testing.B) {
		for b.Loop() {
			Logprob(x, 100)
		}
	})
	b.Run("reference", func(b *testing.B) {
		for b.Loop() {
			lseRef(x)
		}
	})
}

// TestArgmax checks the blocked argmax against the plain loop: the lowest
// index of the largest value, NaN as -Inf, 0 when nothing is above -Inf.
func TestArgmax(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	slow := func(z []float32) int {
		best, at := float32(math.Inf(-1)), 0
		for i, v := range z {
			if v > best {
				best, at = v, i
			}
		}
		return at
	}
	cases := [][]float32{
		{}, {1}, {nan}, {-inf, -inf}, {nan, 2, nan, 2}, {3, 1, 3},
		{1, 2, 3, 4, 5, 6, 7, 8, 9, 9}, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		{nan, nan, nan, nan, nan, nan, nan, nan, -1}, {inf, inf}, {-inf, nan, -inf},
	}
	r := rand.New(rand.NewPCG(7, 8))
	for range 200 {
		z := make([]float32, r.IntN(70))
		for i := range z {
			switch r.IntN(10) {
			case 0:
				z[i] = nan
			case 1:
				z[i] = float32(r.IntN(3)) // ties
			default:
				z[i] = float32(r.NormFloat64())
			}
		}
		cases = append(cases, z)
	}
	for _, z := range cases {
		if got, want := argmax(z), slow(z); got != want {
			t.Fatalf("argmax(%v) = %d, want %d", z, got, want)
		}
	}
}
