package eval

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestLogProb(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	row := make([]float32, 50257)
	for i := range row {
		row[i] = float32(r.NormFloat64() * 8)
	}
	row[123] = 40 // the argmax
	for _, tgt := range []int{0, 123, 50256} {
		got, isMax := logProb(row, tgt)
		if want := logSoftmax(row, tgt); math.Abs(got-want) > 1e-9 || isMax != (tgt == 123) {
			t.Errorf("target %d: %.12f (argmax %v), want %.12f (%v)", tgt, got, isMax, want, tgt == 123)
		}
	}
	// Ties go to the lowest id.
	if _, isMax := logProb([]float32{1, 3, 3}, 2); isMax {
		t.Error("tie: the later of two equal maxima counted as the argmax")
	}
}
