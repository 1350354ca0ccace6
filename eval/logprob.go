package eval

import "math"

// logProb returns log softmax(row)[target], computed in float64, and
// whether target is the argmax of row (ties going to the lowest id).
func logProb(row []float32, target int) (float64, bool) {
	best := argmax(row)
	m := float64(row[best])
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - m)
	}
	return float64(row[target]) - m - math.Log(s), best == target
}

// argmax returns the index of row's largest value, the first one on ties.
func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}
