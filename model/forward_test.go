package model_test

import (
	"math"
	"slices"
	"sort"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
)

// Tolerance for log-probabilities against the float64 reference: plain
// float32 arithmetic lands near 4e-7, and the erf form of GELU would move
// them by 1.9e-5, so 5e-6 separates right from wrong (fixtures README).
const logprobTol = 5e-6

func load(t *testing.T, dir string) *model.Model {
	t.Helper()
	m, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// logSoftmax returns the log-probabilities of logits and their
// log-sum-exp, in float64.
func logSoftmax(logits []float32) ([]float64, float64) {
	mx := math.Inf(-1)
	for _, v := range logits {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v) - mx)
	}
	lse := mx + math.Log(s)
	out := make([]float64, len(logits))
	for i, v := range logits {
		out[i] = float64(v) - lse
	}
	return out, lse
}

func top(lp []float64, k int) []int {
	ids := make([]int, len(lp))
	for i := range ids {
		ids[i] = i
	}
	sort.SliceStable(ids, func(a, b int) bool { return lp[ids[a]] > lp[ids[b]] })
	return ids[:k]
}

func near(t *testing.T, what string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > logprobTol {
		t.Errorf("%s = %.9f, want %.9f (diff %.2g > %.0g)", what, got, want, math.Abs(got-want), logprobTol)
	}
}

func TestForwardFixture(t *testing.T) {
	for _, dir := range []string{fixture.HFDir(t), fixture.OpenAIDir(t)} {
		exp := fixture.LoadExpected(t, dir)
		m := load(t, dir)
		if c := m.Config; c.NLayer != exp.Config.NLayer || c.NEmbd != exp.Config.NEmbd || c.NCtx != exp.Config.NPositions || c.VocabSize != exp.Config.VocabSize {
			t.Fatalf("%s: config %+v does not match the fixture's %+v", dir, c, exp.Config)
		}
		for _, seq := range exp.Sequences {
			logits, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true}})
			if err != nil {
				t.Fatalf("%s: %v", seq.Name, err)
			}
			V := m.Config.VocabSize
			T := len(seq.InputIDs)
			for i := range T {
				lp, lse := logSoftmax(logits[0][i*V : (i+1)*V])
				near(t, seq.Name+" logsumexp", lse, seq.LogsumexpPerPosition[i])
				if i+1 < T {
					near(t, seq.Name+" next-token logprob", lp[seq.InputIDs[i+1]], seq.NextTokenLogprobs[i])
				}
				if i == T-1 {
					near(t, seq.Name+" last logsumexp", lse, seq.Last.Logsumexp)
					if got := top(lp, 10); !slices.Equal(got, seq.Last.Top10IDs) {
						t.Errorf("%s: top10 %v, want %v", seq.Name, got, seq.Last.Top10IDs)
					}
					for j, id := range seq.Last.Top10IDs {
						near(t, seq.Name+" top10 logprob", lp[id], seq.Last.Top10Logprobs[j])
					}
					for j, id := range seq.Last.ProbeIDs {
						near(t, seq.Name+" probe logprob", lp[id], seq.Last.ProbeLogprobs[j])
					}
				}
			}
		}
	}
}

// greedy decodes n tokens after prompt, one position per step through the
// cache (cached) or by recomputing the whole prefix each step.
func greedy(t *testing.T, m *model.Model, prompt []int, n int, cached bool) []int {
	t.Helper()
	ids := slices.Clone(prompt)
	cache := m.NewCache()
	next := ids
	var out []int
	for range n {
		if !cached {
			cache.Reset()
			next = ids
		}
		logits, err := m.Forward([]model.Step{{Cache: cache, Tokens: next}})
		if err != nil {
			t.Fatal(err)
		}
		best := 0
		for j, v := range logits[0] {
			if v > logits[0][best] {
				best = j
			}
		}
		out = append(out, best)
		ids = append(ids, best)
		next = []int{best}
	}
	return out
}

func TestGreedyFixture(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	m := load(t, dir)
	for _, g := range exp.GreedyAllPrompts {
		for _, cached := range []bool{true, false} {
			if got := greedy(t, m, g.PromptIDs, g.NNew, cached); !slices.Equal(got, g.GeneratedIDs) {
				t.Errorf("prompt %q (cached %v): greedy %v, want %v", g.PromptText, cached, got, g.GeneratedIDs)
			}
		}
	}
}

// TestBatchMatchesSingle checks that a sequence's logits do not depend on
// what else is in the batch, bit for bit.
func TestBatchMatchesSingle(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	m := load(t, dir)
	var steps []model.Step
	var singles [][]float32
	for _, seq := range exp.Sequences[:4] {
		out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, out[0])
		steps = append(steps, model.Step{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true})
	}
	batched, err := m.Forward(steps)
	if err != nil {
		t.Fatal(err)
	}
	for i := range singles {
		if !slices.Equal(batched[i], singles[i]) {
			t.Errorf("sequence %d: batched logits differ from the single run", i)
		}
	}
}

// TestFormatsIdentical checks that the Hugging Face and OpenAI copies of
// the same weights give identical outputs, not merely close ones.
func TestFormatsIdentical(t *testing.T) {
	hf, oa := load(t, fixture.HFDir(t)), load(t, fixture.OpenAIDir(t))
	exp := fixture.LoadExpected(t, fixture.HFDir(t))
	for _, seq := range exp.Sequences {
		a, err := hf.Forward([]model.Step{{Cache: hf.NewCache(), Tokens: seq.InputIDs, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := oa.Forward([]model.Step{{Cache: oa.NewCache(), Tokens: seq.InputIDs, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a[0], b[0]) {
			t.Errorf("%s: Hugging Face and OpenAI copies give different logits", seq.Name)
		}
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	m := load(t, fixture.HFDir(t))
	cases := map[string][]int{
		"negative id":     {1, -1},
		"id past vocab":   {m.Config.VocabSize},
		"longer than ctx": make([]int, m.Config.NCtx+1),
	}
	for name, ids := range cases {
		if _, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// A full cache refuses one more position.
	c := m.NewCache()
	if _, err := m.Forward([]model.Step{{Cache: c, Tokens: make([]int, m.Config.NCtx)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Forward([]model.Step{{Cache: c, Tokens: []int{1}}}); err == nil {
		t.Error("full cache: no error")
	}
	// A cache not made for this model is refused, not indexed out of range.
	for name, c := range map[string]*model.Cache{"nil cache": nil, "empty cache": {}} {
		if _, err := m.Forward([]model.Step{{Cache: c, Tokens: []int{1}}}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestCacheCopyFrom checks that a copied cache carries on exactly as the
// original: what beam search and several samples of one prompt rely on.
func TestCacheCopyFrom(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	m := load(t, dir)
	var ids []int // the longest sequence
	for _, seq := range exp.Sequences {
		if len(seq.InputIDs) > len(ids) {
			ids = seq.InputIDs
		}
	}
	a := m.NewCache()
	if _, err := m.Forward([]model.Step{{Cache: a, Tokens: ids[:len(ids)-1]}}); err != nil {
		t.Fatal(err)
	}
	b := m.NewCache()
	// b held a longer sequence before: what is past a's positions must
	// not matter.
	if _, err := m.Forward([]model.Step{{Cache: b, Tokens: ids[1:]}}); err != nil {
		t.Fatal(err)
	}
	b.CopyFrom(a)
	if b.Len != a.Len {
		t.Fatalf("copy has %d positions, want %d", b.Len, a.Len)
	}
	last := ids[len(ids)-1:]
	want, err := m.Forward([]model.Step{{Cache: a, Tokens: last}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Forward([]model.Step{{Cache: b, Tokens: last}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got[0], want[0]) {
		t.Error("decoding from the copied cache differs from the original")
	}
}
