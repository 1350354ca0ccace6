package eval

import (
	"fmt"
	"math"
	"strings"

	"github.com/gpt2go/gpt2/model"
)

// fakeTokenizer encodes by greedy longest match over its vocabulary.
type fakeTokenizer struct {
	vocab []string
	ids   map[string]int
}

func newFakeTokenizer(vocab ...string) *fakeTokenizer {
	t := &fakeTokenizer{vocab: vocab, ids: map[string]int{}}
	for i, v := range vocab {
		if _, dup := t.ids[v]; dup {
			panic("duplicate fake token " + v)
		}
		t.ids[v] = i
	}
	return t
}

// withASCII returns vocab followed by every printable ASCII character and
// "\n" not already in it, so that any such text encodes.
func withASCII(vocab ...string) []string {
	have := map[string]bool{}
	for _, v := range vocab {
		have[v] = true
	}
	for c := byte(' '); c <= '~'; c++ {
		if !have[string(c)] {
			vocab = append(vocab, string(c))
		}
	}
	if !have["\n"] {
		vocab = append(vocab, "\n")
	}
	return vocab
}

func (t *fakeTokenizer) Encode(s string) []int {
	var ids []int
	for len(s) > 0 {
		best := ""
		for _, v := range t.vocab {
			if len(v) > len(best) && strings.HasPrefix(s, v) {
				best = v
			}
		}
		if best == "" {
			panic(fmt.Sprintf("fake tokenizer cannot encode %q", s))
		}
		ids = append(ids, t.ids[best])
		s = s[len(best):]
	}
	return ids
}

func (t *fakeTokenizer) TokenBytes(id int) ([]byte, error) {
	if id < 0 || id >= len(t.vocab) {
		return nil, fmt.Errorf("fake token %d out of range", id)
	}
	return []byte(t.vocab[id]), nil
}

func (t *fakeTokenizer) id(s string) int {
	id, ok := t.ids[s]
	if !ok {
		panic("no fake token " + s)
	}
	return id
}

// fakeLM is a language model whose logits are a known function of the
// tokens in the cache (the window's history), with a strict n_ctx.
type fakeLM struct {
	nctx, vocab int
	logits      func(hist []int) []float32
	hist        map[*model.Cache][]int
	fed         int // tokens fed in all
	maxFed      int // most tokens in one cache
}

func newFakeLM(nctx, vocab int, logits func(hist []int) []float32) *fakeLM {
	return &fakeLM{nctx: nctx, vocab: vocab, logits: logits, hist: map[*model.Cache][]int{}}
}

func (f *fakeLM) NewCache() *model.Cache { return &model.Cache{} }

func (f *fakeLM) Forward(steps []model.Step) ([][]float32, error) {
	out := make([][]float32, len(steps))
	for i, s := range steps {
		c := s.Cache
		if len(s.Tokens) == 0 {
			return nil, fmt.Errorf("fake forward: step %d has no tokens", i)
		}
		if c.Len+len(s.Tokens) > f.nctx {
			return nil, fmt.Errorf("fake forward: %d cached + %d new > n_ctx %d: %w", c.Len, len(s.Tokens), f.nctx, model.ErrContext)
		}
		h := append(f.hist[c][:c.Len:c.Len], s.Tokens...)
		for _, id := range s.Tokens {
			if id < 0 || id >= f.vocab {
				return nil, fmt.Errorf("fake forward: token %d: %w", id, model.ErrToken)
			}
		}
		f.hist[c] = h
		for p := c.Len; p < len(h); p++ {
			if s.All || p == len(h)-1 {
				row := f.logits(h[:p+1])
				if len(row) != f.vocab {
					panic("fake logits of the wrong length")
				}
				out[i] = append(out[i], row...)
			}
		}
		c.Len = len(h)
		f.fed += len(s.Tokens)
		f.maxFed = max(f.maxFed, c.Len)
	}
	return out, nil
}

// logSoftmax is log softmax(row)[t] computed directly, for expected values.
func logSoftmax(row []float32, t int) float64 {
	var z float64
	for _, v := range row {
		z += math.Exp(float64(v))
	}
	return float64(row[t]) - math.Log(z)
}

// bigram returns logits that depend on the last token only: table maps a
// token to the logits of chosen next tokens; all others are 0.
func bigram(tok *fakeTokenizer, table map[string]map[string]float32) func([]int) []float32 {
	return func(h []int) []float32 {
		row := make([]float32, len(tok.vocab))
		for next, v := range table[tok.vocab[h[len(h)-1]]] {
			row[tok.id(next)] = v
		}
		return row
	}
}

func newFakeEvaluator(lm *fakeLM, tok *fakeTokenizer, bos int) *Evaluator {
	return &Evaluator{LM: lm, Tokenizer: tok, NCtx: lm.nctx, VocabSize: lm.vocab, BOS: bos}
}

func near(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}
