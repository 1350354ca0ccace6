package sample

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// smallModel is an untrained model with GPT-2's vocabulary and a context of
// nctx tokens; the Sequence tests below feed it hand-made logits instead of
// running it.
func smallModel(t *testing.T, nctx int) *model.Model {
	t.Helper()
	m, err := model.New(model.Config{NLayer: 1, NHead: 1, NEmbd: 2, NCtx: nctx, VocabSize: 50257, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// force makes s accept each of ids in turn, pretending the model was run
// (the cache is marked as holding the inputs) and put all its probability
// on the id. It returns the texts Accept returned and whether s finished.
func force(t *testing.T, s *Sequence, ids ...int) (texts []string, done bool) {
	t.Helper()
	for i, id := range ids {
		if s.Done() {
			t.Fatalf("sequence finished before token %d of %v", i, ids)
		}
		if len(s.NextInput()) == 0 {
			t.Fatal("NextInput is empty for an unfinished sequence")
		}
		s.cache.Len = len(s.ids)
		logits := make([]float32, 50257)
		logits[id] = 100
		got, text, d := s.Accept(logits)
		if got != id {
			t.Fatalf("Accept drew %d, want the forced %d", got, id)
		}
		texts = append(texts, text)
		done = d
	}
	return texts, done
}

func newSeq(t *testing.T, m *model.Model, prompt []int, opts Options) *Sequence {
	t.Helper()
	s, err := NewSequence(m, tokenizer.Default(), nil, prompt, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSequenceStopAcrossTokens(t *testing.T) {
	tok := tokenizer.Default()
	m := smallModel(t, 64)
	ids := tok.Encode("Hello world. Bye now")
	if len(ids) < 4 {
		t.Fatalf("unexpected tokenization %v", ids)
	}
	for _, c := range []struct {
		stop  []string
		text  string
		ntoks int // tokens drawn before the sequence ends
	}{
		{[]string{"d. B"}, "Hello worl", 4},              // spans "world", ".", " Bye"
		{[]string{"xyz"}, "Hello world. Bye now", -1},    // never matches
		{[]string{"world", "lo w"}, "Hel", 2},            // the earliest match wins
		{[]string{"Hello"}, "", 1},                       // at the very start
		{[]string{"ow"}, "Hello world. Bye n", len(ids)}, // in the last token
	} {
		s := newSeq(t, m, []int{464}, Options{Stop: c.stop, MaxTokens: len(ids)})
		var texts []string
		var done bool
		n := 0
		for _, id := range ids {
			var tx []string
			tx, done = force(t, s, id)
			texts = append(texts, tx...)
			n++
			if done {
				break
			}
		}
		joined := strings.Join(texts, "")
		if joined != c.text || s.Text() != c.text {
			t.Errorf("stop %q: streamed %q (pieces %q), Text %q; want %q", c.stop, joined, texts, s.Text(), c.text)
		}
		if c.ntoks > 0 {
			if n != c.ntoks || !done || s.FinishReason() != FinishStop {
				t.Errorf("stop %q: ended after %d tokens (done %v, %q), want %d with \"stop\"", c.stop, n, done, s.FinishReason(), c.ntoks)
			}
		} else if s.FinishReason() != FinishLength {
			t.Errorf("stop %q: finish %q, want length", c.stop, s.FinishReason())
		}
		if !slices.Equal(s.Generated(), ids[:n]) {
			t.Errorf("stop %q: generated %v, want %v", c.stop, s.Generated(), ids[:n])
		}
		for _, st := range c.stop {
			for _, piece := range texts {
				if strings.Contains(piece, st) {
					t.Errorf("stop %q leaked into streamed text %q", st, piece)
				}
			}
		}
	}
}

func TestSequenceHoldsBackPartialStop(t *testing.T) {
	tok := tokenizer.Default()
	m := smallModel(t, 64)
	s := newSeq(t, m, nil, Options{Stop: []string{" world!"}})
	if !slices.Equal(s.Prompt(), []int{tokenizer.EndOfText}) {
		t.Fatalf("empty prompt became %v, want [<|endoftext|>]", s.Prompt())
	}
	ids := tok.Encode("Hello world?")
	texts, _ := force(t, s, ids...)
	// " world" could begin the stop string, so it waits for the next token.
	if texts[0] != "Hello" || texts[1] != "" || texts[2] != " world?" {
		t.Errorf("pieces %q, want [Hello, \"\", \" world?\"]", texts)
	}
	texts, done := force(t, s, tokenizer.EndOfText)
	if !done || texts[0] != "" || s.FinishReason() != FinishStop || s.Text() != "Hello world?" {
		t.Errorf("after <|endoftext|>: %q done %v finish %q text %q", texts, done, s.FinishReason(), s.Text())
	}
	if len(s.NextInput()) != 0 {
		t.Errorf("finished sequence still has input %v", s.NextInput())
	}

	// Held-back text comes out when the sequence ends for length.
	s = newSeq(t, m, []int{464}, Options{Stop: []string{" world!"}, MaxTokens: 2})
	texts, done = force(t, s, ids[:2]...)
	if !done || strings.Join(texts, "") != "Hello world" || s.FinishReason() != FinishLength {
		t.Errorf("length end: %q done %v finish %q", texts, done, s.FinishReason())
	}
}

func TestSequenceUTF8(t *testing.T) {
	tok := tokenizer.Default()
	m := smallModel(t, 64)
	ids := tok.Encode("a🙂")
	if len(ids) < 3 {
		t.Fatalf("want the emoji split across tokens, got %v", ids)
	}
	s := newSeq(t, m, []int{464}, Options{})
	texts, _ := force(t, s, ids...)
	if texts[0] != "a" || texts[len(texts)-1] != "🙂" || strings.Join(texts, "") != "a🙂" {
		t.Errorf("pieces %q", texts)
	}
	// A character cut short by the end of the sample is flushed as it is.
	s = newSeq(t, m, []int{464}, Options{MaxTokens: len(ids) - 1})
	texts, done := force(t, s, ids[:len(ids)-1]...)
	want, _ := tok.Decode(ids[:len(ids)-1])
	if !done || strings.Join(texts, "") != want || s.Text() != want {
		t.Errorf("cut short: %q, want %q", texts, want)
	}
}

func TestSequenceContextAndLength(t *testing.T) {
	m := smallModel(t, 8)
	// 6 prompt tokens: the 3rd generated token lands at position 8, which
	// the model cannot be fed, so the sample ends there.
	s := newSeq(t, m, []int{1, 2, 3, 4, 5, 6}, Options{})
	if got := s.NextInput(); !slices.Equal(got, []int{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("first input %v, want the prompt", got)
	}
	_, done := force(t, s, 10, 11)
	if done {
		t.Fatal("done too early")
	}
	if got := s.NextInput(); !slices.Equal(got, []int{11}) {
		t.Fatalf("input %v, want the last token", got)
	}
	_, done = force(t, s, 12)
	if !done || s.FinishReason() != FinishLength || len(s.Generated()) != 3 {
		t.Fatalf("done %v finish %q generated %v, want 3 tokens and length", done, s.FinishReason(), s.Generated())
	}
	if lp := s.Logprobs(); len(lp) != 3 || lp[0] > 0 || lp[0] < -1e-6 {
		t.Errorf("logprobs %v: want 3, each about 0 for a forced token", lp)
	}

	// A prompt exactly n_ctx long yields one token.
	s = newSeq(t, m, []int{1, 2, 3, 4, 5, 6, 7, 8}, Options{})
	if _, done := force(t, s, 9); !done || s.FinishReason() != FinishLength {
		t.Error("a full-context prompt should end after one token")
	}

	// A reset cache asks for everything again.
	s = newSeq(t, m, []int{1, 2, 3}, Options{})
	force(t, s, 4, 5)
	s.cache.Reset()
	if got := s.NextInput(); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
		t.Errorf("after Reset, input %v, want the whole sequence", got)
	}
}

func TestPromptTooLong(t *testing.T) {
	m := smallModel(t, 8)
	long := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	_, err := NewSequence(m, tokenizer.Default(), nil, long, Options{})
	if !errors.Is(err, model.ErrContext) || !strings.Contains(err.Error(), "11") || !strings.Contains(err.Error(), "8") {
		t.Fatalf("error %v, want ErrContext naming 11 and 8", err)
	}
	for _, c := range []struct {
		max  int
		want []int
	}{
		{3, []int{6, 7, 8, 9, 10, 11}}, // 8+1-3 = 6 kept: the 3 tokens fit
		{0, []int{8, 9, 10, 11}},       // half the context
		{20, []int{11}},                // at least one
	} {
		s, err := NewSequence(m, tokenizer.Default(), nil, long, Options{KeepLast: true, MaxTokens: c.max})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Prompt(), c.want) {
			t.Errorf("KeepLast with MaxTokens %d kept %v, want %v", c.max, s.Prompt(), c.want)
		}
		if c.max == 3 {
			if _, done := force(t, s, 1, 2, 3); !done || s.FinishReason() != FinishLength {
				t.Errorf("KeepLast: 3 tokens should fit exactly")
			}
		}
	}
	if _, err := NewSequence(m, tokenizer.Default(), nil, []int{1, 50257}, Options{}); !errors.Is(err, model.ErrToken) {
		t.Errorf("out-of-vocabulary prompt: %v", err)
	}
	if _, err := NewSequence(m, tokenizer.Default(), nil, []int{1}, Options{Stop: []string{""}}); err == nil {
		t.Error("empty stop string accepted")
	}
	if _, err := NewSequence(m, tokenizer.Default(), nil, []int{1}, Options{MaxTokens: -1}); err == nil {
		t.Error("negative MaxTokens accepted")
	}
	other := smallModel(t, 16)
	if _, err := NewSequence(m, tokenizer.Default(), other.NewCache(), []int{1}, Options{}); err == nil {
		t.Error("a cache of another shape accepted")
	}
}
