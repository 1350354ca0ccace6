package kernels

import "math"

// AdamWStep holds the scalars of one AdamW step, as torch's
// _single_tensor_adamw computes them from the hyperparameters and the step
// number, rounded to float32.
type AdamWStep struct {
	GradScale     float32 // multiplies every gradient (clipping)
	Decay         float32 // 1 - lr*weight_decay, or 1 for tensors not decayed
	OneMinusBeta1 float32
	Beta2         float32
	OneMinusBeta2 float32
	InvBC2Sqrt    float32 // 1 / sqrt(1 - beta2^t)
	Eps           float32
	StepSize      float32 // lr / (1 - beta1^t)
}

// AdamW applies one AdamW step to params p with gradients g and moments m
// and v, all of one length:
//
//	g' = g*GradScale
//	m  = m + (1-beta1)(g' - m)
//	v  = v*beta2 + (1-beta2)*g'*g'
//	p  = p*Decay - StepSize * m / (sqrt(v)*InvBC2Sqrt + Eps)
//
// Every implementation performs these float32 operations one at a time in
// this order, so all give the same bits.
func AdamW(p, g, m, v []float32, c AdamWStep) {
	n := len(p)
	_, _, _ = g[:n], m[:n], v[:n]
	im := active()
	consts := [8]float32{c.GradScale, c.Decay, c.OneMinusBeta1, c.Beta2, c.OneMinusBeta2, c.InvBC2Sqrt, c.Eps, c.StepSize}
	Parallel(n, 1<<14, func(lo, hi int) {
		nv := 0
		if im.simd {
			nv = (hi - lo) / im.lanes * im.lanes
		}
		if nv > 0 {
			im.adamW(&p[lo], &g[lo], &m[lo], &v[lo], nv, &consts)
		}
		adamWRef(p[lo+nv:hi], g[lo+nv:hi], m[lo+nv:hi], v[lo+nv:hi], c)
	})
}

// adamWRef is AdamW in plain Go, for one range.
func adamWRef(p, g, m, v []float32, c AdamWStep) {
	for j := range p {
		gj := g[j] * c.GradScale
		pj := p[j] * c.Decay
		mj := m[j] + c.OneMinusBeta1*(gj-m[j])
		vj := v[j]*c.Beta2 + c.OneMinusBeta2*gj*gj
		m[j], v[j] = mj, vj
		denom := float32(math.Sqrt(float64(vj)))*c.InvBC2Sqrt + c.Eps
		p[j] = pj - c.StepSize*(mj/denom)
	}
}
