package eval

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// The fixture model's float32 log-probabilities are within 5e-6 of the
// float64 reference (shared/fixtures/README.md).
const fixtureTol = 5e-6

func loadFixture(t testing.TB) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	dir := fixture.HFDir(t)
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok
}

// refLogProbs runs one forward pass over toks with logits everywhere and
// returns log p(toks[i+1] | toks[:i+1]) for each i, in float64.
func refLogProbs(t *testing.T, m *model.Model, toks []int) []float64 {
	t.Helper()
	out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: toks, All: true}})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	lps := make([]float64, len(toks)-1)
	for i := range lps {
		row := out[0][i*V : (i+1)*V]
		mx := math.Inf(-1)
		for _, v := range row {
			mx = math.Max(mx, float64(v))
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v) - mx)
		}
		lps[i] = float64(row[toks[i+1]]) - mx - math.Log(z)
	}
	return lps
}

const fixtureText = "The quick brown fox jumps over the lazy dog. It was the best of times, it was the worst of times; " +
	"in 1859, Dickens wrote it — and readers still quote it. Then the fox ran off into the woods."

func TestFixtureStreamMatchesForward(t *testing.T) {
	m, tok := loadFixture(t)
	ids := tok.Encode(fixtureText)
	L := len(ids)
	if L >= m.Config.NCtx {
		t.Fatalf("text has %d tokens; want fewer than n_ctx %d", L, m.Config.NCtx)
	}
	x := append([]int{tokenizer.EndOfText}, ids...)
	var want float64
	for _, lp := range refLogProbs(t, m, x) {
		want -= lp
	}
	// W >= L: one window, fed in chunks or whole.
	for _, c := range []struct{ w, batch, chunk int }{{L, 1, 7}, {L + 1, 2, 128}, {m.Config.NCtx, 4, 0}} {
		e := New(m, tok)
		e.Batch, e.Chunk = c.batch, c.chunk
		got, err := e.StreamNLL(context.Background(), "test", ids, c.w, max(c.w/2, 1))
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > fixtureTol*float64(L) {
			t.Errorf("W %d batch %d chunk %d: nll %.9f, want %.9f", c.w, c.batch, c.chunk, got, want)
		}
	}
}

// TestFixtureWindows checks W < L against forward passes over each window
// computed directly from the definition.
func TestFixtureWindows(t *testing.T) {
	m, tok := loadFixture(t)
	ids := tok.Encode(fixtureText)
	L := len(ids)
	x := append([]int{tokenizer.EndOfText}, ids...)
	for _, ws := range [][2]int{{16, 6}, {20, 20}, {4, 1}} {
		w, s := ws[0], ws[1]
		var want float64
		scored := 0 // targets x[1..scored] done
		for start := 0; scored < L; start += s {
			end := min(start+w, L)
			lps := refLogProbs(t, m, x[start:end+1]) // lps[i] scores x[start+i+1]
			for tgt := scored + 1; tgt <= end; tgt++ {
				want -= lps[tgt-start-1]
			}
			scored = end
		}
		e := New(m, tok)
		e.Batch, e.Chunk = 3, 10
		got, err := e.StreamNLL(context.Background(), "test", ids, w, s)
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(got-want) > fixtureTol*float64(L) {
			t.Errorf("W %d S %d: nll %.9f, want %.9f", w, s, got, want)
		}
	}
}

// TestFixtureExpected scores the reference sequences, the first token
// standing in for the start token, against the float64 reference sums.
func TestFixtureExpected(t *testing.T) {
	m, tok := loadFixture(t)
	exp := fixture.LoadExpected(t, fixture.HFDir(t))
	e := New(m, tok)
	e.Batch, e.Chunk = 3, 20
	for _, sq := range exp.Sequences {
		if len(sq.InputIDs) < 2 {
			continue
		}
		e.BOS = sq.InputIDs[0]
		got, err := e.StreamNLL(context.Background(), sq.Name, sq.InputIDs[1:], m.Config.NCtx, m.Config.NCtx/2)
		if err != nil {
			t.Fatal(err)
		}
		if d := math.Abs(-got - sq.SumNextTokenLogprobs); d > fixtureTol*float64(len(sq.InputIDs)) {
			t.Errorf("%s: sum of log-probabilities %.9f, want %.9f", sq.Name, -got, sq.SumNextTokenLogprobs)
		}
	}
}

// TestFixtureTasks runs each task with data here on a few examples of the
// real files, and checks that every real file parses without a skip.
func TestFixtureTasks(t *testing.T) {
	m, tok := loadFixture(t)
	e := New(m, tok)
	e.Warn = func(err error) { t.Error(err) }
	for _, c := range []struct {
		task string
		rel  []string
	}{
		{"lambada", []string{"data", "lambada", "lambada_test.jsonl"}},
		{"wsc", []string{"data", "wsc273", "wsc273.llmfoundry.jsonl"}},
		{"ptb", []string{"data", "ptb", "ptb.test.txt"}},
		{"wikitext2", []string{"data", "wikitext", "wikitext-2.wiki.test.tokens"}},
	} {
		path := fixture.Path(t, c.rel...)
		r, err := e.Run(context.Background(), c.task, path, Options{Limit: 3})
		if err != nil {
			t.Fatalf("%s: %v", c.task, err)
		}
		switch r := r.(type) {
		case *LambadaResult:
			// A random model: the target costs about ln 50257 per token.
			if r.N != 3 || r.Skipped != 0 || r.PPL < 1e3 {
				t.Errorf("lambada: %+v", *r)
			}
		case *WSCResult:
			if r.N != 3 || r.Skipped != 0 {
				t.Errorf("wsc: %+v", *r)
			}
		case *LMResult:
			if r.Tokens == 0 || math.Abs(r.NLL/float64(r.Tokens)-math.Log(50257)) > 1 {
				t.Errorf("%s: %+v", c.task, *r)
			}
		}
	}

	// The benchmark token counts of the data README: words plus one <eos>
	// per line.
	for _, c := range []struct {
		rel  []string
		want int
	}{
		{[]string{"data", "wikitext", "wikitext-2.wiki.test.tokens"}, 245_569},
		{[]string{"data", "wikitext", "wikitext-103.wiki.test.tokens"}, 245_569},
		{[]string{"data", "ptb", "ptb.test.txt"}, 82_430},
	} {
		b, err := os.ReadFile(fixture.Path(t, c.rel...))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(strings.Fields(string(b))) + countLines(string(b)); got != c.want {
			t.Errorf("%s: %d benchmark tokens, want %d", c.rel[len(c.rel)-1], got, c.want)
		}
	}

	f, err := os.Open(fixture.Path(t, "data", "lambada", "lambada_test.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	exs, bad, err := ReadLambada(f, f.Name(), false, 0)
	if err != nil || len(exs) != 5153 || len(bad) != 0 {
		t.Errorf("lambada: %d examples, %d bad (%v), err %v; want 5153, 0", len(exs), len(bad), bad, err)
	}
	g, err := os.Open(fixture.Path(t, "data", "wsc273", "wsc273.llmfoundry.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	wexs, wbad, err := ReadWSC(g, g.Name(), 0)
	if err != nil || len(wexs) != 273 || len(wbad) != 0 {
		t.Errorf("wsc: %d examples, %d bad (%v), err %v; want 273, 0", len(wexs), len(wbad), wbad, err)
	}
}

// BenchmarkStreamNLL reports the throughput of language-model scoring on
// the fixture model: scored tokens per second, and tokens fed per second
// (windows overlap by W - S, so each token is fed about W/S times).
func BenchmarkStreamNLL(b *testing.B) {
	m, tok := loadFixture(b)
	raw, err := os.ReadFile(fixture.Path(b, "data", "wikitext", "wikitext-2.wiki.test.tokens"))
	if err != nil {
		b.Fatal(err)
	}
	ids := tok.Encode(limitText(string(raw), 60, false))
	e := New(m, tok)
	var fed int64
	e.Progress = func(p Progress) { fed = p.Fed }
	b.ResetTimer()
	start := time.Now()
	var total int64
	for range b.N {
		if _, err := e.StreamNLL(context.Background(), "bench", ids, m.Config.NCtx, m.Config.NCtx/2); err != nil {
			b.Fatal(err)
		}
		total += fed
	}
	sec := time.Since(start).Seconds()
	b.ReportMetric(float64(len(ids)*b.N)/sec, "scored-tokens/s")
	b.ReportMetric(float64(total)/sec, "fed-tokens/s")
}
