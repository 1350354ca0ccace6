package eval

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestClosestSize(t *testing.T) {
	for _, c := range []struct {
		params int
		want   string
	}{
		{3_324_736, "117M"}, {124_439_808, "117M"}, {200_000_000, "117M"}, {210_000_000, "345M"},
		{354_823_168, "345M"}, {774_030_080, "762M"}, {1_557_611_200, "1542M"}, {10_000_000_000, "1542M"},
	} {
		if got := ClosestSize(c.params).Name; got != c.want {
			t.Errorf("ClosestSize(%d) = %s, want %s", c.params, got, c.want)
		}
	}
}

func TestSuite(t *testing.T) {
	vocab := withASCII("<bos>")
	tok := newFakeTokenizer(vocab...)
	V := len(vocab)
	e := newFakeEvaluator(newFakeLM(32, V, func([]int) []float32 { return make([]float32, V) }), tok, tok.id("<bos>"))
	var warned []string
	e.Warn = func(err error) { warned = append(warned, err.Error()) }

	dir := t.TempDir()
	write := func(rel, data string) {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("ptb/ptb.test.txt", " a b \n c \n")
	// A directory where the WSC file should be: that task fails, the
	// others still run.
	if err := os.MkdirAll(filepath.Join(dir, "wsc273", "wsc273.llmfoundry.jsonl"), 0o755); err != nil {
		t.Fatal(err)
	}
	var done []string
	sr, err := e.Suite(context.Background(), dir, Options{}, 354_823_168, func(r Result) { done = append(done, r.TaskName()) })
	if err != nil {
		t.Fatal(err)
	}
	if sr.PaperSize != "345M" || len(sr.Tasks) != 1 || len(done) != 1 || len(sr.Missing) != 8 || len(sr.Failed) != 1 || len(warned) != 1 {
		t.Fatalf("suite: %+v (done %v, warnings %v)", sr, done, warned)
	}
	// "a b\nc\n": 6 characters, each costing ln V; 3 words + 2 <eos>.
	r := sr.Tasks[0].(*LMResult)
	if len(sr.Table) != 1 || sr.Table[0].Paper == nil || *sr.Table[0].Paper != 47.33 || sr.Table[0].Value != r.BenchmarkPPL || r.BenchmarkTokens != 5 {
		t.Errorf("table %+v for %+v", sr.Table, *r)
	}
	var b strings.Builder
	if err := sr.WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| PTB | ppl | ", " | 47.33 |", "GPT-2 345M (paper)", "Failed: wsc: ", "data not found: lambada"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b.String())
		}
	}

	if _, err := e.Suite(context.Background(), t.TempDir(), Options{}, 1, nil); err == nil {
		t.Error("suite over an empty directory: no error")
	}
}
