package model

import (
	"fmt"
	"sync"

	"github.com/gpt2go/gpt2/kernels"
)

// Cache holds the keys and values of the positions a sequence has seen, so
// that each new token costs one position of work. It is allocated once, at
// the model's full context; pages are touched as positions fill.
type Cache struct {
	// K holds each layer's keys in blocks of kernels.KeyBlock positions,
	// each transposed (see kernels.Attention); V each layer's values,
	// [n_ctx, C].
	K, V  [][]float32
	Len   int // positions filled
	width int // C
}

// NewCache allocates a key/value cache for one sequence.
func (m *Model) NewCache() *Cache {
	c := m.Config
	kc := &Cache{K: make([][]float32, c.NLayer), V: make([][]float32, c.NLayer), width: c.NEmbd}
	for l := range c.NLayer {
		kc.K[l] = make([]float32, kernels.KeyCacheLen(c.NCtx, c.NEmbd))
		kc.V[l] = make([]float32, c.NCtx*c.NEmbd)
	}
	return kc
}

// Fits reports whether c is a cache of m's shape.
func (m *Model) Fits(c *Cache) bool {
	cfg := m.Config
	if c == nil || len(c.K) != cfg.NLayer || len(c.V) != cfg.NLayer || c.width != cfg.NEmbd {
		return false
	}
	for l := range c.K {
		if len(c.K[l]) != kernels.KeyCacheLen(cfg.NCtx, cfg.NEmbd) || len(c.V[l]) != cfg.NCtx*cfg.NEmbd {
			return false
		}
	}
	return true
}

// CopyFrom makes c hold the same positions as src, a cache of the same
// model.
func (c *Cache) CopyFrom(src *Cache) {
	n := src.Len
	for l := range src.K {
		copy(c.K[l][:kernels.KeyCacheLen(n, src.width)], src.K[l])
		copy(c.V[l][:n*src.width], src.V[l])
	}
	c.Len = n
}

// Reset empties the cache for reuse by a new sequence.
func (c *Cache) Reset() { c.Len = 0 }

// Truncate forgets every position from n on.
func (c *Cache) Truncate(n int) {
	if n < c.Len {
		c.Len = max(n, 0)
	}
}

// workspace holds a forward pass's activations. Passes reuse them, so
// that decoding a token allocates little more than its logits.
type workspace struct{ bufs [7][]float32 }

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// get returns buffer i with length n; its contents are stale.
func (w *workspace) get(i, n int) []float32 {
	if cap(w.bufs[i]) < n {
		w.bufs[i] = make([]float32, n)
	}
	return w.bufs[i][:n]
}

// Step is one sequence's part of a batched forward pass: its cache and the
// tokens to append to it.
type Step struct {
	Cache  *Cache
	Tokens []int
	// All asks for logits at every new position; otherwise only the last
	// position's logits are computed.
	All bool
}

// Forward appends each step's tokens to its sequence and returns, for each
// step, the logits at its new positions (All) or at its last one, as
// [positions, vocab] row-major. The tokens of all steps go through the
// dense layers together, which is what makes batching pay.
func (m *Model) Forward(steps []Step) ([][]float32, error) {
	return m.ForwardInto(nil, steps)
}

// ForwardInto is Forward writing the logits into buf when it is large
// enough (else into a new slice), so that a decoding loop can reuse one
// buffer rather than leave the garbage collector 200 KB per token. The
// returned rows alias buf: they are valid until buf is reused.
func (m *Model) ForwardInto(buf []float32, steps []Step) ([][]float32, error) {
	cfg := m.Config
	C, V := cfg.NEmbd, cfg.VocabSize
	n := 0
	for i, s := range steps {
		if len(s.Tokens) == 0 {
			return nil, fmt.Errorf("forward: step %d has no tokens", i)
		}
		if !m.Fits(s.Cache) {
			return nil, fmt.Errorf("forward: step %d: the cache is not one of this model's (NewCache makes one)", i)
		}
		if s.Cache.Len+len(s.Tokens) > cfg.NCtx {
			return nil, fmt.Errorf("forward: %d cached + %d new positions > n_ctx %d: %w",
				s.Cache.Len, len(s.Tokens), cfg.NCtx, ErrContext)
		}
		for _, id := range s.Tokens {
			if id < 0 || id >= V {
				return nil, fmt.Errorf("forward: token %d (vocabulary has %d): %w", id, V, ErrToken)
			}
		}
		n += len(s.Tokens)
	}

	ws := workspaces.Get().(*workspace)
	defer workspaces.Put(ws)
	x := ws.get(0, n*C)  // residual stream
	ln := ws.get(1, n*C) // layer-norm output
	qkv := ws.get(2, n*3*C)
	att := ws.get(3, n*C)
	tmp := ws.get(4, n*C)
	fc := ws.get(5, n*4*C)

	// Embeddings: token plus position.
	row := 0
	for _, s := range steps {
		for j, id := range s.Tokens {
			xr := x[row*C : (row+1)*C]
			m.WTE.Row(xr, id)
			p := m.WPE[(s.Cache.Len+j)*C : (s.Cache.Len+j+1)*C]
			kernels.Add(xr, xr, p)
			row++
		}
	}

	seqs := make([]kernels.AttentionSeq, len(steps))
	eps := float32(cfg.LayerNormEps)
	hs := cfg.HeadSize()
	// Each matrix is named to kernels.Prefetch before the call ahead of
	// it, so that threads that would wait at the end of a call, or while
	// one thread does the small work between calls, fetch it instead:
	// decoding is bound by reading the weights.
	for l := range m.Blocks {
		b := &m.Blocks[l]
		kernels.LayerNorm(ln, x, b.LN1G, b.LN1B, n, C, eps)
		kernels.Prefetch(&b.AttnProj.W, n)
		kernels.MatMul(qkv, ln, n, &b.Attn.W, b.Attn.B)
		row := 0
		for i, s := range steps {
			t, pos := len(s.Tokens), s.Cache.Len
			kc, vc := s.Cache.K[l], s.Cache.V[l]
			kernels.StoreQKV(tmp[row*C:], kc, vc, pos, qkv[row*3*C:], t, C)
			seqs[i] = kernels.AttentionSeq{Out: att[row*C : (row+t)*C], Q: tmp[row*C : (row+t)*C], K: kc, V: vc, T: t, Pos: pos}
			row += t
		}
		kernels.AttentionBatch(seqs, cfg.NHead, hs, C)
		kernels.Prefetch(&b.FC.W, n)
		kernels.MatMul(tmp, att, n, &b.AttnProj.W, b.AttnProj.B)
		kernels.Add(x, x, tmp)

		kernels.LayerNorm(ln, x, b.LN2G, b.LN2B, n, C, eps)
		kernels.Prefetch(&b.FCProj.W, n)
		kernels.MatMul(fc, ln, n, &b.FC.W, b.FC.B)
		kernels.GELU(fc, fc)
		if l+1 < len(m.Blocks) {
			kernels.Prefetch(&m.Blocks[l+1].Attn.W, n)
		} else {
			kernels.Prefetch(m.Output(), n)
		}
		kernels.MatMul(tmp, fc, n, &b.FCProj.W, b.FCProj.B)
		kernels.Add(x, x, tmp)
	}

	// Final layer norm and logits, only at the positions asked for.
	out := make([][]float32, len(steps))
	var rows []int
	row = 0
	for _, s := range steps {
		t := len(s.Tokens)
		if s.All {
			for j := range t {
				rows = append(rows, row+j)
			}
		} else {
			rows = append(rows, row+t-1)
		}
		row += t
		s.Cache.Len += t
	}
	h := ws.get(6, len(rows)*C)
	for i, r := range rows {
		copy(h[i*C:(i+1)*C], x[r*C:(r+1)*C])
	}
	kernels.LayerNorm(h, h, m.LNFG, m.LNFB, len(rows), C, eps)
	logits := buf[:cap(buf)]
	if len(logits) < len(rows)*V {
		logits = make([]float32, len(rows)*V)
	}
	logits = logits[:len(rows)*V]
	kernels.Prefetch(&m.Blocks[0].Attn.W, n) // the next token's first
	kernels.MatMulT(logits, h, len(rows), m.Output())
	off := 0
	for i, s := range steps {
		k := 1
		if s.All {
			k = len(s.Tokens)
		}
		out[i] = logits[off*V : (off+k)*V : (off+k)*V]
		off += k
	}
	return out, nil
}
