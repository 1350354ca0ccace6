package train

import (
	"math"

	"github.com/gpt2go/gpt2/kernels"
)

// AdamW is torch.optim.AdamW: Adam with decoupled weight decay, applied
// before the Adam update and only to the tensors whose Layout entry has
// Decay set. The moments are float32, like the master weights.
type AdamW struct {
	Beta1, Beta2, Eps, WeightDecay float64
	M, V                           []float32 // first and second moments, in the parameters' layout
	Step                           int       // updates done so far
}

// NewAdamW returns an optimizer for n parameters with zero moments.
func NewAdamW(n int, beta1, beta2, eps, weightDecay float64) *AdamW {
	return &AdamW{Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: weightDecay,
		M: make([]float32, n), V: make([]float32, n)}
}

// Update applies one AdamW step with learning rate lr to params, given
// their gradients multiplied by gradScale (the clipping factor, applied
// here to save a pass over the gradients), and advances Step.
func (o *AdamW) Update(l *Layout, params, grads []float32, lr float64, gradScale float32) {
	o.Step++
	// The scalars follow torch's _single_tensor_adamw: step_size =
	// lr / (1 - beta1^k), denom = sqrt(v) / sqrt(1 - beta2^k) + eps.
	bc1 := 1 - math.Pow(o.Beta1, float64(o.Step))
	bc2Sqrt := math.Sqrt(1 - math.Pow(o.Beta2, float64(o.Step)))
	step := kernels.AdamWStep{
		GradScale:     gradScale,
		OneMinusBeta1: 1 - float32(o.Beta1),
		Beta2:         float32(o.Beta2),
		OneMinusBeta2: 1 - float32(o.Beta2),
		InvBC2Sqrt:    float32(1 / bc2Sqrt),
		Eps:           float32(o.Eps),
		StepSize:      float32(lr / bc1),
	}
	decay := float32(1 - lr*o.WeightDecay)
	for i, t := range l.Tensors {
		step.Decay = 1
		if t.Decay {
			step.Decay = decay
		}
		kernels.AdamW(l.Slice(params, i), l.Slice(grads, i), l.Slice(o.M, i), l.Slice(o.V, i), step)
	}
}

// normBlock is the fixed block size of the gradient norm's partial sums.
// Fixing it, rather than splitting by thread, makes the norm identical
// whatever the thread count.
const normBlock = 1 << 16

// SumSquares returns the sum of the squares of x, accumulated in float64.
func SumSquares(x []float32) float64 {
	nb := (len(x) + normBlock - 1) / normBlock
	partial := make([]float64, nb)
	kernels.Parallel(nb, 1, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			var s float64
			for _, v := range x[b*normBlock : min((b+1)*normBlock, len(x))] {
				s += float64(v) * float64(v)
			}
			partial[b] = s
		}
	})
	var s float64
	for _, p := range partial {
		s += p
	}
	return s
}

// ClipScale returns the factor that clips gradients of global L2 norm
// norm to maxNorm: min(1, maxNorm/norm), or 1 when maxNorm <= 0 (off).
func ClipScale(norm, maxNorm float64) float32 {
	if maxNorm > 0 && norm > maxNorm {
		return float32(maxNorm / norm)
	}
	return 1
}

// GradNorm returns the global L2 norm of grads.
func GradNorm(grads []float32) float64 { return math.Sqrt(SumSquares(grads)) }

// Schedule is the learning-rate schedule: linear warmup over Warmup steps
// to LR, then cosine decay to MinLR at step Steps.
type Schedule struct {
	LR, MinLR     float64
	Warmup, Steps int
}

// At returns the learning rate for step k (counted from 0).
func (s Schedule) At(k int) float64 {
	if k < s.Warmup {
		return s.LR * float64(k+1) / float64(s.Warmup)
	}
	if s.Steps <= s.Warmup || s.MinLR == s.LR {
		return s.LR
	}
	ratio := min(float64(k-s.Warmup)/float64(s.Steps-s.Warmup), 1)
	return s.MinLR + 0.5*(s.LR-s.MinLR)*(1+math.Cos(math.Pi*ratio))
}
