package eval

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const cbtFixture = "testdata/cbt_tiny.txt"

// The fixture's story, five sentences repeated to 20, detokenized by hand.
var cbtStory = []string{
	"Once upon a time there was a cat.",
	"The cat lived in a small house.",
	`"I like the mat," said the cat.`,
	"The dog didn't like the mat.",
	"The dog's bed was by the door.",
}

var cbtCands = []string{"cat", "dog", "mat", "house", "door", "bed", "time", "king", "queen", "x"}

func readCBTFixture(t *testing.T, raw bool, limit int) ([]ChoiceExample, []error) {
	t.Helper()
	f, err := os.Open(cbtFixture)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exs, bad, err := ReadCBT(f, cbtFixture, raw, limit)
	if err != nil {
		t.Fatal(err)
	}
	return exs, bad
}

func TestReadCBT(t *testing.T) {
	exs, bad := readCBTFixture(t, false, 0)
	// The second record has 9 candidates; its question is file line 43.
	if len(bad) != 1 || !strings.Contains(bad[0].Error(), cbtFixture+":43:") || !strings.Contains(bad[0].Error(), "9 candidates") {
		t.Errorf("errors %v, want one for %s:43 (9 candidates)", bad, cbtFixture)
	}
	if len(exs) != 2 {
		t.Fatalf("%d examples, want 2", len(exs))
	}
	var story []string
	for i := range 20 {
		story = append(story, cbtStory[i%len(cbtStory)])
	}
	text := strings.Join(story, " ")

	ex := exs[0]
	if len(ex.Contexts) != 1 || ex.Contexts[0] != text+" The" {
		t.Errorf("context %q,\nwant %q", ex.Contexts, text+" The")
	}
	for i, c := range cbtCands {
		if want := " " + c + " sat on the mat."; ex.Continuations[i] != want {
			t.Errorf("continuation %d = %q, want %q", i, ex.Continuations[i], want)
		}
	}
	if ex.Answer != 0 {
		t.Errorf("answer %d, want 0", ex.Answer)
	}

	// An opening quote sticks to the candidate: the context ends with it.
	ex = exs[1]
	if len(ex.Contexts) != 1 || ex.Contexts[0] != text+` "` {
		t.Errorf("context %q,\nwant %q", ex.Contexts, text+` "`)
	}
	if want := `dog," said the king.`; ex.Continuations[1] != want || ex.Answer != 1 {
		t.Errorf("continuation 1 = %q, answer %d; want %q, 1", ex.Continuations[1], ex.Answer, want)
	}

	raw, _ := readCBTFixture(t, true, 1)
	if len(raw) != 1 || !strings.HasSuffix(raw[0].Contexts[0], "by the door . The") ||
		raw[0].Continuations[9] != " x sat on the mat ." {
		t.Errorf("raw example: %q / %q", raw[0].Contexts, raw[0].Continuations)
	}
}

func TestParseCBTErrors(t *testing.T) {
	rec := make([]string, 21)
	for i := range 20 {
		rec[i] = strconv.Itoa(i+1) + " A line ."
	}
	q := func(s string) []string { r := append([]string(nil), rec...); r[20] = s; return r }
	cands := strings.Join(cbtCands, "|")
	cases := []struct {
		rec  []string
		line int
		msg  string
	}{
		{rec[:20], 0, "20 lines"},
		{q("21 No blank here .\tcat\t\t" + cands), 20, "no XXXXX"},
		{q("21 The XXXXX sat .\tcat\t" + cands), 20, "3 tab-separated"},
		{q("21 The XXXXX sat .\tlion\t\t" + cands), 20, "not among"},
		{q("22 The XXXXX sat .\tcat\t\t" + cands), 20, "number 21"},
		{append(append([]string{"7 Wrong number ."}, rec[1:20]...), "21 The XXXXX sat .\tcat\t\t"+cands), 0, "number 1"},
	}
	for _, c := range cases {
		_, line, err := parseCBT(c.rec, false)
		if err == nil || line != c.line || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("record ending %q: line %d, err %v; want line %d and %q", c.rec[len(c.rec)-1], line, err, c.line, c.msg)
		}
	}
}

func TestCBTAccuracy(t *testing.T) {
	tok := newFakeTokenizer(withASCII("<bos>", " cat", " dog")...)
	V := len(tok.vocab)
	// Logits independent of the history: " cat" 3, " dog" 1, others 0. The
	// rest of the question costs the same for every candidate, so the
	// winner is the candidate whose own tokens are most likely: "cat" in
	// the first example (right); in the second, where the candidate has no
	// leading space and is spelled in characters, the one-character "x"
	// (wrong, the answer is "dog").
	unigram := func([]int) []float32 {
		row := make([]float32, V)
		row[tok.id(" cat")], row[tok.id(" dog")] = 3, 1
		return row
	}
	lm := newFakeLM(1024, V, unigram)
	e := newFakeEvaluator(lm, tok, tok.id("<bos>"))
	var warned []error
	e.Warn = func(err error) { warned = append(warned, err) }
	e.Batch, e.Chunk = 3, 16
	r, err := e.Run(context.Background(), "cbt-cn", cbtFixture, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (ChoiceResult{Task: "cbt-cn", N: 2, Accuracy: 0.5, Skipped: 1}); *r.(*ChoiceResult) != want {
		t.Errorf("result %+v, want %+v", *r.(*ChoiceResult), want)
	}
	if len(warned) != 1 || !strings.Contains(warned[0].Error(), cbtFixture+":43:") {
		t.Errorf("warnings %v, want one naming %s:43", warned, cbtFixture)
	}
}

// wscWorld is a bigram fake for the Winograd test.
func wscWorld() (*fakeTokenizer, *fakeLM) {
	tok := newFakeTokenizer(withASCII("<bos>", "The", " cat", " dog", " sat")...)
	table := map[string]map[string]float32{
		"The":  {" dog": 3},
		" cat": {" sat": 2},
		" sat": {".": 1},
	}
	return tok, newFakeLM(64, len(tok.vocab), bigram(tok, table))
}

func TestWSCScores(t *testing.T) {
	tok, lm := wscWorld()
	e := newFakeEvaluator(lm, tok, tok.id("<bos>"))
	ex := WSCExample{Options: []string{"The cat", "The dog"}, Continuation: "sat.", Gold: 0}
	partial, full := wscChoices(ex)
	scores, skipped, err := e.Choices(context.Background(), "wsc", []ChoiceExample{partial, full})
	if err != nil || skipped != 0 {
		t.Fatalf("skipped %d, err %v", skipped, err)
	}
	V := float64(len(tok.vocab))
	z := func(a float64) float64 { return math.Log(math.Exp(a) + V - 1) } // one token has logit a
	lnV := math.Log(V)
	want := [][]float64{
		// partial: " sat" then "." after "The cat" / "The dog"
		{(2 - z(2)) + (1 - z(1)), -lnV + (1 - z(1))},
		// full: "The" after <bos>, then the rest
		{-lnV + (0 - z(3)) + (2 - z(2)) + (1 - z(1)), -lnV + (3 - z(3)) - lnV + (1 - z(1))},
	}
	for i := range want {
		for k := range want[i] {
			if !near(scores[i][k], want[i][k], 1e-12) {
				t.Errorf("form %d option %d: log p %.15g, want %.15g", i, k, scores[i][k], want[i][k])
			}
		}
	}

	// Partial scoring picks the cat (right), full scoring the dog (wrong).
	dir := t.TempDir()
	path := filepath.Join(dir, "wsc.jsonl")
	data := `{"context_options": ["The cat", "The dog"], "continuation": "sat.", "gold": 0}
{"context_options": ["The cat", "The dog"], "continuation": "sat.", "gold": 5}
not json
{"context_options": ["The cat"], "continuation": "sat.", "gold": 0}
{"context_options": ["The cat", "The dog"], "continuation": "sat.", "gold": 1}
`
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	var warned []string
	e.Warn = func(err error) { warned = append(warned, err.Error()) }
	r, err := e.Run(context.Background(), "wsc", path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (WSCResult{Task: "wsc", N: 2, AccuracyPartial: 0.5, AccuracyFull: 0.5, Skipped: 3}); *r.(*WSCResult) != want {
		t.Errorf("result %+v, want %+v", *r.(*WSCResult), want)
	}
	for i, line := range []string{":2:", ":3:", ":4:"} {
		if i >= len(warned) || !strings.Contains(warned[i], path+line) {
			t.Errorf("warnings %q: want one naming %s%s", warned, path, line)
		}
	}
}

func TestChoiceContextTruncation(t *testing.T) {
	tok, lm := wscWorld()
	lm.nctx = 6
	e := newFakeEvaluator(lm, tok, tok.id("<bos>"))
	// 9 context tokens and a 2-token continuation: 5 context tokens are
	// kept (5 + 2 - 1 = 6 positions fed), so the score is as with the
	// short context.
	long := ChoiceExample{Contexts: []string{"The cat The cat The cat The cat The cat"}, Continuations: []string{" sat.", " dog."}}
	short := ChoiceExample{Contexts: []string{"The cat The cat The cat"}, Continuations: []string{" sat.", " dog."}}
	tooLong := ChoiceExample{Contexts: []string{"The"}, Continuations: []string{" sat sat sat sat sat sat sat", " dog."}}
	var warned int
	e.Warn = func(error) { warned++ }
	scores, skipped, err := e.Choices(context.Background(), "test", []ChoiceExample{long, short, tooLong})
	if err != nil {
		t.Fatal(err)
	}
	if scores[0][0] != scores[1][0] || scores[0][1] != scores[1][1] || lm.maxFed > 6 {
		t.Errorf("truncated context scores %v, want %v (at most %d fed)", scores[0], scores[1], lm.maxFed)
	}
	if skipped != 1 || warned != 1 || scores[2] != nil {
		t.Errorf("continuation longer than n_ctx: skipped %d, warned %d, scores %v", skipped, warned, scores[2])
	}
}
