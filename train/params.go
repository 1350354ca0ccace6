// Package train trains and fine-tunes GPT-2 models on the CPU: a forward
// pass that keeps the activations the backward pass needs, the backward
// pass itself, AdamW, the training loop with its checkpoints, and the
// loss-curve plot. Token data comes from package train/data.
//
// All parameters live in one flat float32 buffer in a fixed order (Layout),
// and so do their gradients and the optimizer's moments, so that clipping,
// AdamW and saving are plain loops; View makes a *model.Model whose slices
// alias such a buffer, so the forward kernels read the weights in place.
package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// Tensor is one parameter tensor's place in the flat buffer.
type Tensor struct {
	Name   string // Hugging Face name, without the "transformer." prefix
	Shape  []int
	Offset int
	// Decay is true for the tensors AdamW applies weight decay to: those of
	// two or more dimensions (the embeddings and the four matrices of each
	// block), as in GPT-2's training and torch's usual parameter groups.
	Decay bool
}

// Size is the number of elements of t.
func (t Tensor) Size() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Layout fixes the order of a model's parameters in a flat buffer: wte,
// wpe, then each block's tensors in Hugging Face order, then ln_f.
type Layout struct {
	Config  model.Config
	Tensors []Tensor
	Size    int // total number of parameters
}

// NewLayout returns the layout of a model of shape cfg.
func NewLayout(cfg model.Config) (*Layout, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	C, V := cfg.NEmbd, cfg.VocabSize
	l := &Layout{Config: cfg}
	add := func(name string, shape ...int) {
		t := Tensor{Name: name, Shape: shape, Offset: l.Size, Decay: len(shape) >= 2}
		l.Tensors = append(l.Tensors, t)
		l.Size += t.Size()
	}
	add("wte.weight", V, C)
	add("wpe.weight", cfg.NCtx, C)
	for i := range cfg.NLayer {
		p := fmt.Sprintf("h.%d.", i)
		add(p+"ln_1.weight", C)
		add(p+"ln_1.bias", C)
		add(p+"attn.c_attn.weight", C, 3*C)
		add(p+"attn.c_attn.bias", 3*C)
		add(p+"attn.c_proj.weight", C, C)
		add(p+"attn.c_proj.bias", C)
		add(p+"ln_2.weight", C)
		add(p+"ln_2.bias", C)
		add(p+"mlp.c_fc.weight", C, 4*C)
		add(p+"mlp.c_fc.bias", 4*C)
		add(p+"mlp.c_proj.weight", 4*C, C)
		add(p+"mlp.c_proj.bias", C)
	}
	add("ln_f.weight", C)
	add("ln_f.bias", C)
	return l, nil
}

// Slice returns tensor i's part of buf.
func (l *Layout) Slice(buf []float32, i int) []float32 {
	t := l.Tensors[i]
	return buf[t.Offset : t.Offset+t.Size() : t.Offset+t.Size()]
}

// Lookup returns the index of the tensor with the given name.
func (l *Layout) Lookup(name string) (int, bool) {
	i := slices.IndexFunc(l.Tensors, func(t Tensor) bool { return t.Name == name })
	return i, i >= 0
}

// View returns a model whose weights alias buf, which must hold l.Size
// values. The output projection is tied to wte.
func (l *Layout) View(buf []float32) *model.Model {
	if len(buf) != l.Size {
		panic(fmt.Sprintf("train: View of %d values, layout has %d", len(buf), l.Size))
	}
	cfg := l.Config
	C := cfg.NEmbd
	next := 0
	take := func() []float32 {
		s := l.Slice(buf, next)
		next++
		return s
	}
	mat := func(rows, cols int) kernels.Mat { return kernels.NewMat(rows, cols, take()) }
	m := &model.Model{Config: cfg}
	m.WTE = mat(cfg.VocabSize, C)
	m.WPE = take()
	for range cfg.NLayer {
		var b model.Block
		b.LN1G, b.LN1B = take(), take()
		b.Attn.W, b.Attn.B = mat(C, 3*C), take()
		b.AttnProj.W, b.AttnProj.B = mat(C, C), take()
		b.LN2G, b.LN2B = take(), take()
		b.FC.W, b.FC.B = mat(C, 4*C), take()
		b.FCProj.W, b.FCProj.B = mat(4*C, C), take()
		m.Blocks = append(m.Blocks, b)
	}
	m.LNFG, m.LNFB = take(), take()
	return m
}

// tensorsOf lists a model's parameters in layout order, as float32:
// matrices stored in another type are converted (into new slices).
func tensorsOf(m *model.Model) [][]float32 {
	ts := [][]float32{m.WTE.Float32(), m.WPE}
	for i := range m.Blocks {
		b := &m.Blocks[i]
		ts = append(ts, b.LN1G, b.LN1B, b.Attn.W.Float32(), b.Attn.B, b.AttnProj.W.Float32(), b.AttnProj.B,
			b.LN2G, b.LN2B, b.FC.W.Float32(), b.FC.B, b.FCProj.W.Float32(), b.FCProj.B)
	}
	return append(ts, m.LNFG, m.LNFB)
}

// Flatten copies a model's weights into a new flat float32 buffer in
// layout order, converting any stored in 16 or 8 bits. A separate output
// projection is accepted only when it equals wte, as some saved fine-tunes
// store the tied matrix twice: training keeps the two tied.
func Flatten(l *Layout, m *model.Model) ([]float32, error) {
	if m.Config != l.Config {
		return nil, fmt.Errorf("flatten: model config %+v differs from layout %+v", m.Config, l.Config)
	}
	ts := tensorsOf(m)
	if m.LMHead != nil && !slices.Equal(m.LMHead.Float32(), ts[0]) {
		return nil, fmt.Errorf("flatten: the model has an output projection (lm_head) separate from wte; training supports GPT-2's tied embedding only")
	}
	buf := make([]float32, l.Size)
	for i, src := range ts {
		dst := l.Slice(buf, i)
		if len(src) != len(dst) {
			return nil, fmt.Errorf("flatten: %s has %d values, want %d", l.Tensors[i].Name, len(src), len(dst))
		}
		copy(dst, src)
	}
	return buf, nil
}

// Init fills buf with GPT-2's initialisation, drawn from a generator
// seeded with seed: matrices and embeddings N(0, 0.02), the residual
// projections (attn.c_proj and mlp.c_proj weights) N(0, 0.02/sqrt(2
// n_layer)) so that the residual stream's variance does not grow with
// depth, LayerNorm gains 1, and biases 0.
func Init(l *Layout, buf []float32, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	residStd := 0.02 / math.Sqrt(2*float64(l.Config.NLayer))
	for i, t := range l.Tensors {
		s := l.Slice(buf, i)
		switch {
		case len(t.Shape) >= 2:
			std := 0.02
			if strings.HasSuffix(t.Name, "attn.c_proj.weight") || strings.HasSuffix(t.Name, "mlp.c_proj.weight") {
				std = residStd
			}
			for j := range s {
				s[j] = float32(rng.NormFloat64() * std)
			}
		case strings.HasSuffix(t.Name, "ln_1.weight") || strings.HasSuffix(t.Name, "ln_2.weight") || t.Name == "ln_f.weight":
			for j := range s {
				s[j] = 1
			}
		default:
			clear(s)
		}
	}
}
