// Package model holds the GPT-2 architecture: its configuration, its
// weights, and the forward pass with a key/value cache.
package model

import (
	"errors"
	"fmt"
	"io"

	"github.com/gpt2go/gpt2/kernels"
)

// Config is the shape of a GPT-2 model.
type Config struct {
	NLayer       int     `json:"n_layer"`
	NHead        int     `json:"n_head"`
	NEmbd        int     `json:"n_embd"`
	NCtx         int     `json:"n_ctx"`
	VocabSize    int     `json:"vocab_size"`
	LayerNormEps float64 `json:"layer_norm_epsilon"`
}

// Presets are the released GPT-2 sizes.
var Presets = map[string]Config{
	"gpt2":        {NLayer: 12, NHead: 12, NEmbd: 768, NCtx: 1024, VocabSize: 50257, LayerNormEps: 1e-5},
	"gpt2-medium": {NLayer: 24, NHead: 16, NEmbd: 1024, NCtx: 1024, VocabSize: 50257, LayerNormEps: 1e-5},
	"gpt2-large":  {NLayer: 36, NHead: 20, NEmbd: 1280, NCtx: 1024, VocabSize: 50257, LayerNormEps: 1e-5},
	"gpt2-xl":     {NLayer: 48, NHead: 25, NEmbd: 1600, NCtx: 1024, VocabSize: 50257, LayerNormEps: 1e-5},
}

// Validate reports whether the configuration describes a buildable model.
func (c Config) Validate() error {
	switch {
	case c.NLayer <= 0 || c.NHead <= 0 || c.NEmbd <= 0 || c.NCtx <= 0 || c.VocabSize <= 0:
		return fmt.Errorf("config: n_layer, n_head, n_embd, n_ctx and vocab_size must be positive (got %d, %d, %d, %d, %d)",
			c.NLayer, c.NHead, c.NEmbd, c.NCtx, c.VocabSize)
	case c.NEmbd%c.NHead != 0:
		return fmt.Errorf("config: n_embd %d is not a multiple of n_head %d", c.NEmbd, c.NHead)
	case c.LayerNormEps <= 0:
		return fmt.Errorf("config: layer_norm_epsilon must be positive (got %g)", c.LayerNormEps)
	case c.NLayer > 1024 || c.NEmbd > 1<<16 || c.NCtx > 1<<20 || c.VocabSize > 1<<24:
		return fmt.Errorf("config: implausibly large model (n_layer %d, n_embd %d, n_ctx %d, vocab %d)",
			c.NLayer, c.NEmbd, c.NCtx, c.VocabSize)
	}
	return nil
}

// HeadSize is the width of one attention head.
func (c Config) HeadSize() int { return c.NEmbd / c.NHead }

// NumParams counts the model's parameters (the output projection counted
// once, as it is tied to the token embedding).
func (c Config) NumParams() int {
	C := c.NEmbd
	perBlock := 2*C + (C*3*C + 3*C) + (C*C + C) + 2*C + (C*4*C + 4*C) + (4*C*C + C)
	return c.VocabSize*C + c.NCtx*C + c.NLayer*perBlock + 2*C
}

// Linear is an affine map y = x W + b with W in the [in, out] layout (as
// q8_0, stored transposed: see kernels.Mat.T).
type Linear struct {
	W kernels.Mat
	B []float32
}

// Block is one transformer block.
type Block struct {
	LN1G, LN1B []float32 // [C]
	Attn       Linear    // [C, 3C]: q, k, v in that order
	AttnProj   Linear    // [C, C]
	LN2G, LN2B []float32 // [C]
	FC         Linear    // [C, 4C]
	FCProj     Linear    // [4C, C]
}

// Model is a GPT-2 model's weights.
type Model struct {
	Config Config
	WTE    kernels.Mat // [vocab, C], also the output projection when LMHead is nil
	WPE    []float32   // [n_ctx, C]
	Blocks []Block
	LNFG   []float32    // [C]
	LNFB   []float32    // [C]
	LMHead *kernels.Mat // [vocab, C], only when not tied to WTE

	closer io.Closer // the mapped file the weights live in, if any
}

// Close releases the file the weights are mapped from, if any. The model
// must not be used afterwards.
func (m *Model) Close() error {
	if m.closer == nil {
		return nil
	}
	err := m.closer.Close()
	m.closer = nil
	return err
}

// New allocates a float32 model of the given shape with all weights zero.
// Callers fill the weights (a loader, or an initialiser for training).
func New(c Config) (*Model, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	C := c.NEmbd
	m := &Model{
		Config: c,
		WTE:    kernels.NewMat(c.VocabSize, C, make([]float32, c.VocabSize*C)),
		WPE:    make([]float32, c.NCtx*C),
		LNFG:   make([]float32, C),
		LNFB:   make([]float32, C),
	}
	lin := func(in, out int) Linear {
		return Linear{W: kernels.NewMat(in, out, make([]float32, in*out)), B: make([]float32, out)}
	}
	for range c.NLayer {
		m.Blocks = append(m.Blocks, Block{
			LN1G: make([]float32, C), LN1B: make([]float32, C),
			Attn: lin(C, 3*C), AttnProj: lin(C, C),
			LN2G: make([]float32, C), LN2B: make([]float32, C),
			FC: lin(C, 4*C), FCProj: lin(4*C, C),
		})
	}
	return m, nil
}

// Output is the matrix that maps the final hidden state to logits.
func (m *Model) Output() *kernels.Mat {
	if m.LMHead != nil {
		return m.LMHead
	}
	return &m.WTE
}

// WeightBytes is the number of bytes of weights read to decode one token.
func (m *Model) WeightBytes() int64 {
	var n int64
	for i := range m.Blocks {
		b := &m.Blocks[i]
		n += b.Attn.W.Bytes() + b.AttnProj.W.Bytes() + b.FC.W.Bytes() + b.FCProj.W.Bytes()
	}
	return n + m.Output().Bytes()
}

// ErrContext is returned (wrapped) when a sequence would outgrow the
// model's context window.
var ErrContext = errors.New("sequence longer than the model's context")

// ErrToken is returned (wrapped) for a token id outside the vocabulary.
var ErrToken = errors.New("token id outside the vocabulary")

// WeightType is the storage type of the model's weight matrices (that of
// the token embedding; Convert keeps them all alike).
func (m *Model) WeightType() kernels.DType { return m.WTE.DType }

// Convert returns a model whose weight matrices (the four of each block,
// the token embedding, which is also the output projection, and a separate
// LM head if any) are stored as dt: f16 and bf16 round to nearest, q8_0
// quantizes blocks of 32 values (see kernels.Mat). Biases, layer norms and
// the position embedding stay float32; they are small and read once per
// token. The result shares those float32 slices with m, so m must stay
// open while it is in use.
//
// As q8_0 the blocks' matrices are stored transposed, blocks along their
// input axis, for the integer kernels; the token embedding keeps its rows
// (its blocks run along C, its input axis as the output projection).
func (m *Model) Convert(dt kernels.DType) (*Model, error) {
	out := *m
	out.closer = nil
	conv := func(w *kernels.Mat, what string, linear bool) error {
		var c kernels.Mat
		var err error
		if dt == kernels.Q8_0 && linear {
			c, err = w.ConvertQ8T()
		} else {
			c, err = w.Convert(dt)
		}
		if err != nil {
			return fmt.Errorf("convert %s to %v: %w", what, dt, err)
		}
		*w = c
		return nil
	}
	if err := conv(&out.WTE, "wte", false); err != nil {
		return nil, err
	}
	if m.LMHead != nil {
		head := *m.LMHead
		if err := conv(&head, "lm_head", false); err != nil {
			return nil, err
		}
		out.LMHead = &head
	}
	out.Blocks = make([]Block, len(m.Blocks))
	for l, b := range m.Blocks {
		for _, lin := range []struct {
			w    *kernels.Mat
			name string
		}{{&b.Attn.W, "attn.c_attn"}, {&b.AttnProj.W, "attn.c_proj"}, {&b.FC.W, "mlp.c_fc"}, {&b.FCProj.W, "mlp.c_proj"}} {
			if err := conv(lin.w, fmt.Sprintf("h.%d.%s", l, lin.name), true); err != nil {
				return nil, err
			}
		}
		out.Blocks[l] = b
	}
	return &out, nil
}
