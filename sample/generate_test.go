package sample

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// loadFixture returns the tiny reference model (loaded once) and its
// expected outputs.
func loadFixture(t *testing.T) (*model.Model, *tokenizer.Tokenizer, *fixture.Expected) {
	t.Helper()
	dir := fixture.HFDir(t)
	m, err := fixtureOnce(dir)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, fixture.LoadExpected(t, dir)
}

var (
	fixtureMu    sync.Mutex
	fixtureCache = map[string]*model.Model{}
)

func fixtureOnce(dir string) (*model.Model, error) {
	fixtureMu.Lock()
	defer fixtureMu.Unlock()
	if m, ok := fixtureCache[dir]; ok {
		return m, nil
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, err
	}
	fixtureCache[dir] = m
	return m, nil
}

// recomputeGreedy decodes greedily without a cache across steps: each step
// runs the whole prefix through a fresh cache.
func recomputeGreedy(t *testing.T, m *model.Model, prompt []int, n int) []int {
	t.Helper()
	ids := slices.Clone(prompt)
	for range n {
		out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, argmaxF32(out[0]))
	}
	return ids[len(prompt):]
}

func TestGreedyMatchesReference(t *testing.T) {
	m, tok, exp := loadFixture(t)
	if len(exp.GreedyAllPrompts) == 0 {
		t.Fatal("expected.json has no greedy_all_prompts")
	}
	for _, g := range exp.GreedyAllPrompts {
		if got := tok.Encode(g.PromptText); !slices.Equal(got, g.PromptIDs) {
			t.Errorf("%q encodes to %v, want %v", g.PromptText, got, g.PromptIDs)
		}
		res, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: g.NNew}, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := res[0]
		if !slices.Equal(r.Ids, g.GeneratedIDs) {
			t.Errorf("%q: cached greedy %v, want %v", g.PromptText, r.Ids, g.GeneratedIDs)
		}
		if r.FinishReason != FinishLength || len(r.Logprobs) != g.NNew || !slices.Equal(r.Prompt, g.PromptIDs) {
			t.Errorf("%q: finish %q, %d logprobs, prompt %v", g.PromptText, r.FinishReason, len(r.Logprobs), r.Prompt)
		}
		if want, _ := tok.Decode(g.GeneratedIDs); r.Text != want {
			t.Errorf("%q: text %q, want %q", g.PromptText, r.Text, want)
		}
		if got := recomputeGreedy(t, m, g.PromptIDs, g.NNew); !slices.Equal(got, r.Ids) {
			t.Errorf("%q: recomputing the prefix gives %v, the cache %v", g.PromptText, got, r.Ids)
		}
	}
}

func TestLogprobsMatchReference(t *testing.T) {
	m, _, exp := loadFixture(t)
	const tol = 5e-6
	V := m.Config.VocabSize
	for _, sq := range exp.Sequences {
		// Every position of the shorter sequences (the model's own tests
		// cover the rest), the last position of all.
		all := len(sq.InputIDs) <= 64
		out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: sq.InputIDs, All: all}})
		if err != nil {
			t.Fatal(err)
		}
		if all {
			for i := range len(sq.InputIDs) - 1 {
				lp := LogSoftmax(out[0][i*V : (i+1)*V])
				if d := math.Abs(lp[sq.InputIDs[i+1]] - sq.NextTokenLogprobs[i]); d > tol {
					t.Fatalf("%s: logprob at %d off by %g", sq.Name, i, d)
				}
			}
		}
		last := out[0][len(out[0])-V:]
		if d := math.Abs(LogSumExp(last) - sq.Last.Logsumexp); d > tol {
			t.Errorf("%s: logsumexp off by %g", sq.Name, d)
		}
		top := TopK(LogSoftmax(last), 10)
		for i, tl := range top {
			if tl.ID != sq.Last.Top10IDs[i] || math.Abs(tl.Logprob-sq.Last.Top10Logprobs[i]) > tol {
				t.Fatalf("%s: top-10 %v, want ids %v logprobs %v", sq.Name, top, sq.Last.Top10IDs, sq.Last.Top10Logprobs)
			}
		}
	}
}

func TestSamplingIndependentOfBatch(t *testing.T) {
	m, tok, exp := loadFixture(t)
	prompt := exp.GreedyAllPrompts[0].PromptIDs
	opts := Options{Params: Params{Temperature: 1, TopP: 0.95, FrequencyPenalty: 0.3, Seed: 1234}, MaxTokens: 8, N: 4}
	var streamed [4]strings.Builder
	all, err := Generate(context.Background(), m, tok, prompt, opts, func(i int, text string) error {
		streamed[i].WriteString(text)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 4 {
		t.Fatalf("%d results, want 4", len(all))
	}
	distinct := false
	for i, r := range all {
		if streamed[i].String() != r.Text {
			t.Errorf("sample %d: streamed %q, Text %q", i, streamed[i].String(), r.Text)
		}
		if !slices.Equal(r.Ids, all[0].Ids) {
			distinct = true
		}
		alone := opts
		alone.N = 1
		alone.Seed = opts.Seed + uint64(i)
		one, err := Generate(context.Background(), m, tok, prompt, alone, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one[0].Ids, r.Ids) || one[0].Text != r.Text {
			t.Errorf("sample %d: alone %v, in a batch of 4 %v", i, one[0].Ids, r.Ids)
		}
	}
	if !distinct {
		t.Error("4 samples at temperature 1 with different seeds are identical")
	}
	again, err := Generate(context.Background(), m, tok, prompt, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range all {
		if !slices.Equal(again[i].Ids, all[i].Ids) {
			t.Errorf("sample %d not reproducible: %v then %v", i, all[i].Ids, again[i].Ids)
		}
	}
}

func TestSkipLogprobs(t *testing.T) {
	m, tok, exp := loadFixture(t)
	prompt := exp.GreedyAllPrompts[0].PromptIDs
	opts := Options{Params: Params{Temperature: 0.8, TopK: 40, Seed: 7}, MaxTokens: 6, N: 2}
	with, err := Generate(context.Background(), m, tok, prompt, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts.SkipLogprobs = true
	without, err := Generate(context.Background(), m, tok, prompt, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range with {
		if !slices.Equal(with[i].Ids, without[i].Ids) || with[i].Text != without[i].Text {
			t.Errorf("sample %d: %v with logprobs, %v without", i, with[i].Ids, without[i].Ids)
		}
		if len(with[i].Logprobs) != len(with[i].Ids) || without[i].Logprobs != nil {
			t.Errorf("sample %d: %d logprobs for %d tokens, and %v with SkipLogprobs", i, len(with[i].Logprobs), len(with[i].Ids), without[i].Logprobs)
		}
	}
}

func TestTruncatedSamplingIsGreedy(t *testing.T) {
	m, tok, exp := loadFixture(t)
	g := exp.GreedyAllPrompts[1]
	for _, p := range []Params{{Temperature: 1, TopK: 1, Seed: 5}, {Temperature: 1.5, TopP: 1e-9, Seed: 6}} {
		res, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{Params: p, MaxTokens: g.NNew, N: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if !slices.Equal(r.Ids, g.GeneratedIDs) {
				t.Errorf("%+v: %v, want greedy %v", p, r.Ids, g.GeneratedIDs)
			}
		}
	}
}

func TestGeneratePromptLimits(t *testing.T) {
	m, tok, _ := loadFixture(t)
	nctx := m.Config.NCtx
	long := make([]int, nctx+72)
	for i := range long {
		long[i] = (i * 7919) % 50000
	}
	_, err := Generate(context.Background(), m, tok, long, Options{MaxTokens: 5}, nil)
	if !errors.Is(err, model.ErrContext) || !strings.Contains(err.Error(), "200") || !strings.Contains(err.Error(), "128") {
		t.Fatalf("too-long prompt: %v, want ErrContext naming 200 and 128", err)
	}
	res, err := Generate(context.Background(), m, tok, long, Options{MaxTokens: 5, KeepLast: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; !slices.Equal(r.Prompt, long[len(long)-(nctx-4):]) || len(r.Ids) != 5 || r.FinishReason != FinishLength {
		t.Errorf("KeepLast: prompt of %d, %d tokens, %q", len(r.Prompt), len(r.Ids), r.FinishReason)
	}
	// The context fills before MaxTokens.
	res, err = Generate(context.Background(), m, tok, long[:nctx-2], Options{MaxTokens: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res[0]; len(r.Ids) != 3 || r.FinishReason != FinishLength {
		t.Errorf("near-full context: %d tokens, %q; want 3, length", len(r.Ids), r.FinishReason)
	}
	// An empty prompt starts from <|endoftext|>.
	res, err = Generate(context.Background(), m, tok, nil, Options{MaxTokens: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res[0].Prompt, []int{tokenizer.EndOfText}) || len(res[0].Ids) != 2 {
		t.Errorf("empty prompt: %+v", res[0])
	}
	// Cancellation and emit errors stop generation.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Generate(ctx, m, tok, []int{1}, Options{MaxTokens: 3}, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	boom := errors.New("boom")
	if _, err := Generate(context.Background(), m, tok, []int{1}, Options{MaxTokens: 3}, func(int, string) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
	for _, o := range []Options{{N: -1}, {Beams: -2}, {Beams: 2, N: 3}, {Params: Params{TopK: -1}}} {
		if _, err := Generate(context.Background(), m, tok, []int{1}, o, nil); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// scoreIDs returns the log-probability of each of gen after prompt and the
// tokens before it, by running the whole sequence at once.
func scoreIDs(t *testing.T, m *model.Model, prompt, gen []int) []float64 {
	t.Helper()
	ids := append(slices.Clone(prompt), gen...)
	out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids[:len(ids)-1], All: true}})
	if err != nil {
		t.Fatal(err)
	}
	V := m.Config.VocabSize
	lps := make([]float64, len(gen))
	for i := range gen {
		row := len(prompt) - 1 + i
		lps[i] = LogSoftmax(out[0][row*V : (row+1)*V])[gen[i]]
	}
	return lps
}

func TestBeamSearch(t *testing.T) {
	m, tok, exp := loadFixture(t)
	const n = 10
	for _, g := range exp.GreedyAllPrompts[:4] {
		greedy, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: n}, nil)
		if err != nil {
			t.Fatal(err)
		}
		// One beam is greedy decoding (beamSearch directly: Generate
		// samples when Beams is 1).
		one, err := beamSearch(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: n, Beams: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(one[0].Ids, g.GeneratedIDs[:n]) || !slices.Equal(one[0].Ids, greedy[0].Ids) {
			t.Errorf("%q: 1 beam %v, greedy %v", g.PromptText, one[0].Ids, g.GeneratedIDs[:n])
		}

		var texts []string
		beams, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: n, Beams: 4, N: 2, Params: Params{Temperature: 3, Seed: 1}},
			func(i int, text string) error { texts = append(texts, text); return nil })
		if err != nil {
			t.Fatal(err)
		}
		if len(beams) != 2 || len(texts) != 2 || texts[0] != beams[0].Text {
			t.Fatalf("%q: %d results, emitted %q", g.PromptText, len(beams), texts)
		}
		sum := func(lps []float64) (s float64) {
			for _, v := range lps {
				s += v
			}
			return s
		}
		best, gs := sum(beams[0].Logprobs), sum(greedy[0].Logprobs)
		if best < gs-1e-9 {
			t.Errorf("%q: best of 4 beams has log-probability %.6f < greedy's %.6f", g.PromptText, best, gs)
		}
		if sum(beams[1].Logprobs) > best || slices.Equal(beams[0].Ids, beams[1].Ids) {
			t.Errorf("%q: beams not ranked or not distinct: %v, %v", g.PromptText, beams[0], beams[1])
		}
		// The reported log-probabilities are the model's.
		for i, lp := range scoreIDs(t, m, g.PromptIDs, beams[0].Ids) {
			if math.Abs(lp-beams[0].Logprobs[i]) > 1e-5 {
				t.Fatalf("%q: beam logprob %d is %g, scoring gives %g", g.PromptText, i, beams[0].Logprobs[i], lp)
			}
		}
		again, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: n, Beams: 4, N: 2}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(again[0].Ids, beams[0].Ids) || !slices.Equal(again[1].Ids, beams[1].Ids) {
			t.Errorf("%q: beam search not deterministic (or not independent of the sampling parameters)", g.PromptText)
		}
	}
}

func TestBeamSearchStops(t *testing.T) {
	m, tok, exp := loadFixture(t)
	g := exp.GreedyAllPrompts[0] // greedy: " is is is ..."
	res, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: 10, Beams: 2, Stop: []string{"s i"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if strings.Contains(r.Text, "s i") {
			t.Errorf("stop string in beam text %q", r.Text)
		}
	}
	// Greedy with the same stop string: " is is" stops after " i".
	gr, err := Generate(context.Background(), m, tok, g.PromptIDs, Options{MaxTokens: 10, Stop: []string{"s i"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if gr[0].Text != " i" || gr[0].FinishReason != FinishStop || len(gr[0].Ids) != 2 {
		t.Errorf("greedy with stop: %+v", gr[0])
	}
}
