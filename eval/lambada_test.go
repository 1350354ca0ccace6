package eval

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lambadaWorld is a bigram fake for LAMBADA: a word-level vocabulary, and
// the logits of chosen next tokens after each token (all others 0).
func lambadaWorld() (*fakeTokenizer, map[string]map[string]float32) {
	tok := newFakeTokenizer(withASCII("<bos>", " the", " cat", " sat", " on", " mat", " dog", " ca", " he", " a")...)
	table := map[string]map[string]float32{
		" the": {" mat": 3},
		" mat": {".": 2},
		" a":   {" the": 4, " mat": 3},
		" on":  {" dog": 2},
		" cat": {"s": 2},
		" sat": {" ca": 3},
		" ca":  {"t": 3},
		"t":    {"s": 3},
		"s":    {".": 1},
	}
	return tok, table
}

func TestLambadaMetrics(t *testing.T) {
	tok, table := lambadaWorld()
	V := len(tok.vocab)
	lm := newFakeLM(64, V, bigram(tok, table))
	e := newFakeEvaluator(lm, tok, tok.id("<bos>"))
	exs := []LambadaExample{
		// " mat" is the argmax after " the", and the filter's first
		// candidate completes to "mat": right on every measure.
		{Context: "\n the cat sat on the", Word: "mat"},
		// " the" beats " mat" after " a": wrong, but the filter rejects
		// "the" and takes "mat".
		{Context: "\n he sat on a", Word: "mat"},
		// " cats" is " cat" + "s": " cat" is not the argmax after " on",
		// "s" is after " cat". The filter predicts "dog".
		{Context: "\n he sat on", Word: "cats"},
		// After " sat" the argmax is " ca", not " cat"; "s" is the argmax
		// after " cat". The filter extends " ca" greedily to "cats".
		{Context: "\n he sat", Word: "cats"},
	}
	r, err := e.Lambada(context.Background(), exs)
	if err != nil {
		t.Fatal(err)
	}
	// Hand-computed log-probabilities of the targets: with logits a on k
	// chosen tokens and 0 on the rest, log p = a - log(sum exp).
	z := func(big ...float64) float64 { // log of the partition function
		s := float64(V - len(big))
		for _, b := range big {
			s += math.Exp(b)
		}
		return math.Log(s)
	}
	logps := []float64{
		3 - z(3),                // " mat" after " the"
		3 - z(4, 3),             // " mat" after " a"
		(0 - z(2)) + (2 - z(2)), // " cat" after " on", "s" after " cat"
		(0 - z(3)) + (2 - z(2)), // " cat" after " sat", "s" after " cat"
	}
	var sum float64
	for _, l := range logps {
		sum += l
	}
	want := LambadaResult{Task: "lambada", N: 4, Accuracy: 0.25, PPL: math.Exp(-sum / 4),
		AccuracyLastToken: 0.75, AccuracyStopwordFilter: 0.75}
	if !near(r.PPL, want.PPL, 1e-12) {
		t.Errorf("ppl %.15g, want %.15g", r.PPL, want.PPL)
	}
	r.PPL = want.PPL
	if *r != want {
		t.Errorf("result\n got %+v\nwant %+v", *r, want)
	}
}

func TestLambadaContextFits(t *testing.T) {
	tok, table := lambadaWorld()
	V := len(tok.vocab)
	// n_ctx 12: the context keeps its last 12 - 8 = 4 tokens, leaving room
	// for the filter's longest word; the fake fails on any overflow.
	lm := newFakeLM(12, V, bigram(tok, table))
	e := newFakeEvaluator(lm, tok, tok.id("<bos>"))
	long := strings.Repeat(" the cat sat on", 10) + " the"
	r, err := e.Lambada(context.Background(), []LambadaExample{{Context: long, Word: "mat"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.N != 1 || r.Accuracy != 1 || r.AccuracyStopwordFilter != 1 || lm.maxFed > 12 {
		t.Errorf("got %+v with at most %d tokens in a cache", *r, lm.maxFed)
	}
}

func TestReadLambadaMalformed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "lambada.jsonl")
	data := `{"text": "He looked at \u201cthe\u201d cat"}
{"text": "broken
{"txt": "no text field"}
{"text": "nospace"}

{"text": "It sat on the mat"}
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exs, bad, err := ReadLambada(f, path, false, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []LambadaExample{{Context: "\nHe looked at \"the\"", Word: "cat"}, {Context: "\nIt sat on the", Word: "mat"}}
	if len(exs) != 2 || exs[0] != want[0] || exs[1] != want[1] {
		t.Errorf("examples %q, want %q", exs, want)
	}
	if len(bad) != 3 {
		t.Fatalf("%d errors, want 3: %v", len(bad), bad)
	}
	for i, line := range []string{":2:", ":3:", ":4:"} {
		if !strings.Contains(bad[i].Error(), path+line) {
			t.Errorf("error %q does not name %s%s", bad[i], path, line)
		}
	}

	// The run reports the bad lines and counts them as skipped.
	tok, table := lambadaWorld()
	e := newFakeEvaluator(newFakeLM(64, len(tok.vocab), bigram(tok, table)), tok, tok.id("<bos>"))
	var warned []error
	e.Warn = func(err error) { warned = append(warned, err) }
	for _, o := range []Options{{}, {Limit: 1}} {
		warned = nil
		r, err := e.Run(context.Background(), "lambada", path, o)
		if err != nil {
			t.Fatal(err)
		}
		lr := r.(*LambadaResult)
		wantN, wantSkipped := 2, 3
		if o.Limit == 1 {
			wantN, wantSkipped = 1, 0
		}
		if lr.N != wantN || lr.Skipped != wantSkipped || len(warned) != wantSkipped {
			t.Errorf("limit %d: n %d skipped %d warnings %d, want %d, %d, %d", o.Limit, lr.N, lr.Skipped, len(warned), wantN, wantSkipped, wantSkipped)
		}
	}
	if _, err := e.Run(context.Background(), "lambada", filepath.Join(dir, "missing.jsonl"), Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

func TestTopStarts(t *testing.T) {
	row := []float32{5, 1, 3, 3, 9, 2}
	start := []bool{true, true, true, true, false, true}
	if got := topStarts(row, start, 3); len(got) != 3 || got[0] != 0 || got[1] != 2 || got[2] != 3 {
		t.Errorf("topStarts = %v, want [0 2 3]", got)
	}
}
