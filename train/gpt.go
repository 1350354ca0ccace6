package train

import (
	"fmt"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// GPT is a model being trained: its parameters and gradients as flat
// buffers, and the activations of the last forward pass over a batch of B
// sequences of T tokens, which the backward pass reads.
type GPT struct {
	Layout *Layout
	Params []float32 // Layout.Size values
	Grads  []float32 // the same layout; Backward accumulates into it
	B, T   int

	model *model.Model // views into Params
	grads *model.Model // views into Grads

	acts    activations
	inputs  []int
	targets []int
	losses  []float64 // per position, of the last forward pass
}

// activations are what the forward pass keeps, per layer where they differ.
type activations struct {
	encoded             []float32 // [n, C] token + position embeddings
	ln1, ln1Mean, ln1Rs [][]float32
	qkv                 [][]float32 // [n, 3C]
	probs               [][]float32 // [B, H, T, T]
	atty                [][]float32 // [n, C] attention output, heads concatenated
	res2                [][]float32 // [n, C] residual after attention
	ln2, ln2Mean, ln2Rs [][]float32
	fcPre, fcPost       [][]float32 // [n, 4C] before and after GELU
	res3                [][]float32 // [n, C] residual after the MLP: the next layer's input
	lnf, lnfMean, lnfRs []float32
	logits              []float32 // [n, V]; the backward pass turns it into its gradient

	// Scratch for the backward pass.
	dres, dC, dC2 []float32 // [n, C]
	dqkv          []float32 // [n, 3C]
	dfc           []float32 // [n, 4C]
	tmp           []float32 // [n, C]
}

// NewGPT prepares to train the parameters params (laid out by l, and
// owned by the GPT from now on) on batches of b sequences of t tokens.
func NewGPT(l *Layout, params []float32, b, t int) (*GPT, error) {
	cfg := l.Config
	if len(params) != l.Size {
		return nil, fmt.Errorf("train: %d parameters, the layout has %d", len(params), l.Size)
	}
	if b <= 0 || t <= 0 {
		return nil, fmt.Errorf("train: batch %d x sequence %d: both must be positive", b, t)
	}
	if t > cfg.NCtx {
		return nil, fmt.Errorf("train: sequence length %d exceeds the model's context n_ctx %d: %w", t, cfg.NCtx, model.ErrContext)
	}
	g := &GPT{Layout: l, Params: params, Grads: make([]float32, l.Size), B: b, T: t}
	g.model = l.View(g.Params)
	g.grads = l.View(g.Grads)

	n, C, V, L, H := b*t, cfg.NEmbd, cfg.VocabSize, cfg.NLayer, cfg.NHead
	f := func(size int) []float32 { return make([]float32, size) }
	perLayer := func(size int) [][]float32 {
		s := make([][]float32, L)
		for i := range s {
			s[i] = f(size)
		}
		return s
	}
	a := &g.acts
	a.encoded = f(n * C)
	a.ln1, a.ln1Mean, a.ln1Rs = perLayer(n*C), perLayer(n), perLayer(n)
	a.qkv = perLayer(n * 3 * C)
	a.probs = perLayer(b * H * t * t)
	a.atty = perLayer(n * C)
	a.res2 = perLayer(n * C)
	a.ln2, a.ln2Mean, a.ln2Rs = perLayer(n*C), perLayer(n), perLayer(n)
	a.fcPre, a.fcPost = perLayer(n*4*C), perLayer(n*4*C)
	a.res3 = perLayer(n * C)
	a.lnf, a.lnfMean, a.lnfRs = f(n*C), f(n), f(n)
	a.logits = f(n * V)
	a.dres, a.dC, a.dC2, a.tmp = f(n*C), f(n*C), f(n*C), f(n*C)
	a.dqkv = f(n * 3 * C)
	a.dfc = f(n * 4 * C)
	g.inputs = make([]int, n)
	g.targets = make([]int, n)
	g.losses = make([]float64, n)
	return g, nil
}

// Model returns a model whose weights alias the parameters being trained.
func (g *GPT) Model() *model.Model { return g.model }

// ZeroGrad clears the gradients.
func (g *GPT) ZeroGrad() { clear(g.Grads) }

// Forward runs the model over a batch of B*T+1 tokens laid out as llm.c's
// loader reads them: row b's inputs are tokens[b*T : b*T+T] and its
// targets the same window shifted by one. It returns the mean loss.
func (g *GPT) Forward(tokens []uint16) (float64, error) {
	n := g.B * g.T
	if len(tokens) != n+1 {
		return 0, fmt.Errorf("train: forward needs %d tokens (B*T+1), got %d", n+1, len(tokens))
	}
	for i := range n {
		g.inputs[i] = int(tokens[i])
		g.targets[i] = int(tokens[i+1])
	}
	return g.ForwardRows(g.inputs, g.targets)
}

// ForwardRows runs the model over B rows of T inputs and their targets
// (each [B*T], row-major) and returns the mean loss over all positions.
func (g *GPT) ForwardRows(inputs, targets []int) (float64, error) {
	cfg := g.Layout.Config
	B, T := g.B, g.T
	n, C, V, H := B*T, cfg.NEmbd, cfg.VocabSize, cfg.NHead
	if len(inputs) != n || len(targets) != n {
		return 0, fmt.Errorf("train: forward needs %d inputs and targets, got %d and %d", n, len(inputs), len(targets))
	}
	for i := range n {
		for _, id := range [2]int{inputs[i], targets[i]} {
			if id < 0 || id >= V {
				return 0, fmt.Errorf("train: token %d at position %d (vocabulary has %d): %w", id, i, V, model.ErrToken)
			}
		}
	}
	copy(g.inputs, inputs) // no-ops when called from Forward
	copy(g.targets, targets)
	m, a := g.model, &g.acts
	eps := float32(cfg.LayerNormEps)

	for i, id := range inputs {
		xr := a.encoded[i*C : (i+1)*C]
		m.WTE.Row(xr, id)
		p := i % T
		kernels.Add(xr, xr, m.WPE[p*C:(p+1)*C])
	}
	x := a.encoded
	for l := range m.Blocks {
		b := &m.Blocks[l]
		kernels.LayerNorm(a.ln1[l], x, b.LN1G, b.LN1B, n, C, eps)
		kernels.LayerNormStats(a.ln1Mean[l], a.ln1Rs[l], x, n, C, eps)
		kernels.MatMul(a.qkv[l], a.ln1[l], n, &b.Attn.W, b.Attn.B)
		kernels.AttentionForward(a.atty[l], a.probs[l], a.qkv[l], B, T, H, cfg.HeadSize())
		kernels.MatMul(a.tmp, a.atty[l], n, &b.AttnProj.W, b.AttnProj.B)
		kernels.Add(a.res2[l], x, a.tmp)

		kernels.LayerNorm(a.ln2[l], a.res2[l], b.LN2G, b.LN2B, n, C, eps)
		kernels.LayerNormStats(a.ln2Mean[l], a.ln2Rs[l], a.res2[l], n, C, eps)
		kernels.MatMul(a.fcPre[l], a.ln2[l], n, &b.FC.W, b.FC.B)
		kernels.GELU(a.fcPost[l], a.fcPre[l])
		kernels.MatMul(a.tmp, a.fcPost[l], n, &b.FCProj.W, b.FCProj.B)
		kernels.Add(a.res3[l], a.res2[l], a.tmp)
		x = a.res3[l]
	}
	kernels.LayerNorm(a.lnf, x, m.LNFG, m.LNFB, n, C, eps)
	kernels.LayerNormStats(a.lnfMean, a.lnfRs, x, n, C, eps)
	kernels.MatMulT(a.logits, a.lnf, n, &m.WTE)
	return g.loss(false, 0), nil
}

// loss computes the per-position losses from the logits and returns their
// mean; with grad it also turns the logits into the gradient of scale times
// the mean loss.
func (g *GPT) loss(grad bool, scale float32) float64 {
	n := g.B * g.T
	kernels.CrossEntropy(g.losses, g.acts.logits, g.targets, n, g.Layout.Config.VocabSize, scale/float32(n), grad)
	var sum float64
	for _, l := range g.losses {
		sum += l
	}
	return sum / float64(n)
}

// Backward accumulates into Grads the gradient of scale times the mean
// loss of the last Forward (scale is 1/K when averaging K micro-batches).
// It may be called once per Forward.
func (g *GPT) Backward(scale float32) {
	cfg := g.Layout.Config
	B, T := g.B, g.T
	n, C, H := B*T, cfg.NEmbd, cfg.NHead
	m, gm, a := g.model, g.grads, &g.acts

	g.loss(true, scale) // logits become dloss/dlogits
	dlogits := a.logits

	// Output projection, tied to wte: dlnf = dlogits @ wte, dwte += dlogits^T lnf.
	dlnf := a.dC
	kernels.MatMulTBackward(dlnf, gm.WTE.F32, dlogits, a.lnf, n, &m.WTE)
	x := a.encoded
	if L := len(m.Blocks); L > 0 {
		x = a.res3[L-1]
	}
	dres := a.dres
	clear(dres)
	kernels.LayerNormBackward(dres, gm.LNFG, gm.LNFB, dlnf, x, a.lnfMean, a.lnfRs, m.LNFG, n, C)

	for l := len(m.Blocks) - 1; l >= 0; l-- {
		b, gb := &m.Blocks[l], &gm.Blocks[l]
		xin := a.encoded
		if l > 0 {
			xin = a.res3[l-1]
		}
		// MLP: res3 = res2 + gelu(ln2 @ Wfc + bfc) @ Wproj + bproj.
		kernels.MatMulBackward(a.dfc, gb.FCProj.W.F32, gb.FCProj.B, dres, a.fcPost[l], n, &b.FCProj.W)
		kernels.GELUBackward(a.dfc, a.fcPre[l], a.dfc)
		dln2 := a.dC
		kernels.MatMulBackward(dln2, gb.FC.W.F32, gb.FC.B, a.dfc, a.ln2[l], n, &b.FC.W)
		kernels.LayerNormBackward(dres, gb.LN2G, gb.LN2B, dln2, a.res2[l], a.ln2Mean[l], a.ln2Rs[l], b.LN2G, n, C)

		// Attention: res2 = xin + attn(ln1 @ Wqkv + bqkv) @ Wproj + bproj.
		datty := a.dC2
		kernels.MatMulBackward(datty, gb.AttnProj.W.F32, gb.AttnProj.B, dres, a.atty[l], n, &b.AttnProj.W)
		kernels.AttentionBackward(a.dqkv, datty, a.qkv[l], a.probs[l], B, T, H, cfg.HeadSize())
		dln1 := a.dC
		kernels.MatMulBackward(dln1, gb.Attn.W.F32, gb.Attn.B, a.dqkv, a.ln1[l], n, &b.Attn.W)
		kernels.LayerNormBackward(dres, gb.LN1G, gb.LN1B, dln1, xin, a.ln1Mean[l], a.ln1Rs[l], b.LN1G, n, C)
	}

	// Embeddings. Each thread owns a range of columns, and rows are added
	// in order, so repeated tokens sum deterministically.
	kernels.Parallel(C, 16, func(lo, hi int) {
		for i, id := range g.inputs {
			d := dres[i*C+lo : i*C+hi]
			wte := gm.WTE.F32[id*C+lo : id*C+hi]
			p := i % T
			wpe := gm.WPE[p*C+lo : p*C+hi]
			for j, v := range d {
				wte[j] += v
				wpe[j] += v
			}
		}
	})
}
