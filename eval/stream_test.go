package eval

import (
	"context"
	"math"
	"reflect"
	"strings"
	"testing"
)

// lengthLogits gives token 0 the logit n, the number of tokens in the
// window so far, and every other token 0; so a target's log-probability
// tells how much context it was scored with.
func lengthLogits(vocab int) func([]int) []float32 {
	return func(h []int) []float32 {
		row := make([]float32, vocab)
		row[0] = float32(len(h))
		return row
	}
}

// lengthLogProb is log p(t) under lengthLogits with n tokens of context,
// by hand: exp(n) / (exp(n) + V - 1) for token 0, 1 / (exp(n) + V - 1) for
// the others.
func lengthLogProb(t, n, vocab int) float64 {
	z := math.Log(math.Exp(float64(n)) + float64(vocab-1))
	if t == 0 {
		return float64(n) - z
	}
	return -z
}

func TestWindowsScoreEachTargetOnce(t *testing.T) {
	tok := newFakeTokenizer("a", "b", "c", "<bos>")
	const V, bos = 4, 3
	cases := []struct {
		name     string
		text     string
		w, s     int
		ctxLens  []int // by hand: tokens in the window when each target is predicted
		nWindows int
	}{
		{"W<L", "abcab", 4, 2, []int{1, 2, 3, 4, 3}, 2},
		{"W=L", "abcab", 5, 2, []int{1, 2, 3, 4, 5}, 1},
		{"W>L", "abc", 4, 4, []int{1, 2, 3}, 1},
		{"S=W", "abcab", 2, 2, []int{1, 2, 1, 2, 1}, 3},
		{"S=1", "abcab", 3, 1, []int{1, 2, 3, 3, 3}, 3},
		{"S=3", "aabcabcab", 4, 3, []int{1, 2, 3, 4, 2, 3, 4, 2, 3}, 3},
		{"L=1", "a", 4, 2, []int{1}, 1},
		{"L=0", "", 4, 2, nil, 0},
	}
	for _, c := range cases {
		ids := tok.Encode(c.text)
		var want float64
		for i, n := range c.ctxLens {
			want -= lengthLogProb(ids[i], n, V)
		}
		if got := len(Windows(len(ids), c.w, c.s)); got != c.nWindows {
			t.Errorf("%s: %d windows, want %d", c.name, got, c.nWindows)
		}
		for _, bc := range [][2]int{{1, 1}, {3, 2}, {8, 128}} {
			lm := newFakeLM(c.w, V, lengthLogits(V)) // n_ctx = W: a window must fit exactly
			e := newFakeEvaluator(lm, tok, bos)
			e.Batch, e.Chunk = bc[0], bc[1]
			got, err := e.StreamNLL(context.Background(), "test", ids, c.w, c.s)
			if err != nil {
				t.Fatalf("%s batch %d chunk %d: %v", c.name, bc[0], bc[1], err)
			}
			if !near(got, want, 1e-12) {
				t.Errorf("%s batch %d chunk %d: nll %.15g, want %.15g", c.name, bc[0], bc[1], got, want)
			}
			var fed int
			for _, w := range Windows(len(ids), c.w, c.s) {
				fed += w.End - w.Start
			}
			if lm.fed != fed || lm.maxFed > c.w {
				t.Errorf("%s: fed %d tokens (most %d in a window), want %d (at most W = %d)", c.name, lm.fed, lm.maxFed, fed, c.w)
			}
		}
	}
}

func TestWindowsLayout(t *testing.T) {
	got := Windows(5, 4, 2)
	want := []Window{{Start: 0, End: 4, First: 1}, {Start: 2, End: 5, First: 5}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Windows(5, 4, 2) = %+v, want %+v", got, want)
	}
	// Targets x[First..End] of consecutive windows tile 1..L exactly.
	for L := 0; L <= 40; L++ {
		for w := 1; w <= 9; w++ {
			for s := 1; s <= w; s++ {
				next := 1
				for _, win := range Windows(L, w, s) {
					if win.First != next || win.End < win.First || win.End-win.Start > w {
						t.Fatalf("L %d W %d S %d: bad window %+v (next target %d)", L, w, s, win, next)
					}
					next = win.End + 1
				}
				if next != L+1 {
					t.Fatalf("L %d W %d S %d: targets scored up to %d", L, w, s, next-1)
				}
			}
		}
	}
}

func TestWindowValidation(t *testing.T) {
	tok := newFakeTokenizer("a", "<bos>")
	e := newFakeEvaluator(newFakeLM(8, 2, lengthLogits(2)), tok, 1)
	for _, ws := range [][2]int{{4, 0}, {4, 5}, {9, 4}, {0, 0}, {4, -1}} {
		if _, err := e.StreamNLL(context.Background(), "test", []int{0, 0}, ws[0], ws[1]); err == nil ||
			!strings.Contains(err.Error(), "stride") {
			t.Errorf("window %d stride %d: err = %v, want a window/stride error", ws[0], ws[1], err)
		}
	}
}

func TestLanguageModelMetrics(t *testing.T) {
	// Uniform logits: every token costs log V nats, whatever its context.
	vocab := withASCII("<bos>")
	tok := newFakeTokenizer(vocab...)
	V := len(vocab)
	uniform := func([]int) []float32 { return make([]float32, V) }
	e := newFakeEvaluator(newFakeLM(16, V, uniform), tok, tok.id("<bos>"))

	orig := " no it was n't \n the end \n"
	// Detokenized: "no it wasn't\nthe end\n", 21 characters = 21 tokens.
	r, err := e.LanguageModel(context.Background(), "ptb", orig, Options{Window: 8, Stride: 3})
	if err != nil {
		t.Fatal(err)
	}
	lnV := math.Log(float64(V))
	want := LMResult{
		Task: "ptb", Tokens: 21, Words: 6, Bytes: 26, NLL: 21 * lnV,
		TokenPPL:        float64(V),
		WordPPL:         math.Exp(21 * lnV / 6),
		BitsPerByte:     21 * lnV / 26 / math.Ln2,
		BenchmarkTokens: 8, // 6 words + 2 <eos>
		BenchmarkPPL:    math.Exp(21 * lnV / 8),
		Window:          8, Stride: 3, Detokenized: true,
	}
	checkLM(t, r, &want)

	r, err = e.LanguageModel(context.Background(), "ptb", orig, Options{Window: 8, Stride: 3, Raw: true})
	if err != nil {
		t.Fatal(err)
	}
	want.Tokens, want.NLL, want.Detokenized = 26, 26*lnV, false
	want.WordPPL, want.BitsPerByte, want.BenchmarkPPL = math.Exp(26*lnV/6), 26*lnV/26/math.Ln2, math.Exp(26*lnV/8)
	checkLM(t, r, &want)

	// enwik8 has no detokenizer and no benchmark token count.
	r, err = e.LanguageModel(context.Background(), "enwik8", "ab c", Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkLM(t, r, &LMResult{Task: "enwik8", Tokens: 4, Words: 2, Bytes: 4, NLL: 4 * lnV, TokenPPL: float64(V),
		WordPPL: float64(V * V), BitsPerByte: lnV / math.Ln2, Window: 16, Stride: 8})
}

func checkLM(t *testing.T, got, want *LMResult) {
	t.Helper()
	g, w := *got, *want
	for _, f := range [][2]*float64{{&g.NLL, &w.NLL}, {&g.TokenPPL, &w.TokenPPL}, {&g.WordPPL, &w.WordPPL},
		{&g.BitsPerByte, &w.BitsPerByte}, {&g.BenchmarkPPL, &w.BenchmarkPPL}} {
		if near(*f[0], *f[1], 1e-12) {
			*f[0] = *f[1]
		}
	}
	if g != w {
		t.Errorf("result\n got %+v\nwant %+v", g, w)
	}
}

func TestLimitText(t *testing.T) {
	cases := []struct {
		in    string
		n     int
		words bool
		want  string
	}{
		{"a b\nc\nd\n", 2, false, "a b\nc\n"},
		{"a b\nc\nd\n", 0, false, "a b\nc\nd\n"},
		{"a b\nc", 5, false, "a b\nc"},
		{" one two  three four", 3, true, " one two  three "},
		{"one two", 5, true, "one two"},
	}
	for _, c := range cases {
		if got := limitText(c.in, c.n, c.words); got != c.want {
			t.Errorf("limitText(%q, %d, %v) = %q, want %q", c.in, c.n, c.words, got, c.want)
		}
	}
}
