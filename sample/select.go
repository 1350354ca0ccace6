package sample

import (
	"math"

	"github.com/gpt2go/gpt2/kernels"
)

// A cand is a candidate token with its weight: a logit or log-probability
// while candidates are selected, then an unnormalised probability.
type cand struct {
	w  float64
	id int
}

// rank orders candidates by descending weight, then ascending id, so that
// every ordering below is total and therefore deterministic.
func rank(a, b cand) int {
	switch {
	case a.w > b.w:
		return -1
	case a.w < b.w:
		return 1
	}
	return a.id - b.id
}

// topCands appends to dst the k highest-ranked entries of z (fewer if z
// has fewer that are not NaN or -Inf, which never count), in an order that
// depends only on z.
//
// It makes one pass over z, keeping only the values above the k-th largest
// kept so far: once a few hundred values are in, few others pass that
// test, so the pass costs about one comparison per value. A later value
// equal to that threshold ranks below it (its id is higher), so the test
// is strict.
func topCands[F float32 | float64](dst []cand, z []F, k int) []cand {
	if k <= 0 {
		return dst
	}
	base := len(dst)
	limit := base + max(2*k, k+512)
	thresh := F(math.Inf(-1))
	// For float32 logits, blocks whose largest value (from the vector
	// kernel) is not above the threshold are skipped whole: the threshold
	// only rises, so none of their values would pass. A NaN maximum fails
	// the test and the block is scanned as usual.
	z32, _ := any(z).([]float32)
	for i0 := 0; i0 < len(z); i0 += selectBlock {
		i1 := min(i0+selectBlock, len(z))
		if z32 != nil && kernels.Max(z32[i0:i1]) <= float32(thresh) {
			continue
		}
		for i := i0; i < i1; i++ {
			v := z[i]
			if v <= thresh || v != v {
				continue
			}
			dst = append(dst, cand{float64(v), i})
			if len(dst) == limit {
				c := dst[base:]
				selectTop(c, k)
				dst = dst[:base+k]
				low := c[0].w
				for _, x := range c[1:k] {
					low = min(low, x.w)
				}
				thresh = F(low)
			}
		}
	}
	if c := dst[base:]; len(c) > k {
		selectTop(c, k)
		dst = dst[:base+k]
	}
	return dst
}

// selectBlock is how many logits topCands rules out at a time.
const selectBlock = 64

// partition reorders c around a pivot (its middle element) so that the
// candidates ranked before the pivot come first, and returns the pivot's
// new index.
func partition(c []cand) int {
	last := len(c) - 1
	mid := len(c) / 2
	c[mid], c[last] = c[last], c[mid]
	pivot := c[last]
	p := 0
	for i := range last {
		if rank(c[i], pivot) < 0 {
			c[i], c[p] = c[p], c[i]
			p++
		}
	}
	c[p], c[last] = c[last], c[p]
	return p
}

// selectTop reorders c so that c[:k] holds its k highest-ranked
// candidates, in no particular order. It takes linear time on average.
func selectTop(c []cand, k int) {
	lo, hi := 0, len(c)
	for hi-lo > 1 {
		m := lo + partition(c[lo:hi])
		switch {
		case m == k || m == k-1:
			return
		case m > k:
			hi = m
		default:
			lo = m + 1
		}
	}
}

// selectNucleus reorders c so that c[:n] holds the fewest highest-ranked
// candidates whose weights add up to at least target, and returns n (at
// least 1, at most len(c)). It takes linear time on average.
func selectNucleus(c []cand, target float64) int {
	// c[:lo] are the lo highest-ranked candidates, of total weight
	// acc < target; the answer lies in (lo, hi].
	lo, hi := 0, len(c)
	var acc float64
	for hi-lo > 1 {
		m := lo + partition(c[lo:hi])
		var mass float64
		for _, x := range c[lo:m] {
			mass += x.w
		}
		if m > lo && acc+mass >= target {
			hi = m
			continue
		}
		acc += mass + c[m].w
		if acc >= target {
			return m + 1
		}
		lo = m + 1
	}
	return max(hi, 1)
}
