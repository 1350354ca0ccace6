package model_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// eachKernelImpl runs f once per kernel implementation of this machine
// (generic, and avx2/avx512 where the CPU has them).
func eachKernelImpl(t *testing.T, f func(t *testing.T)) {
	old := kernels.Impl()
	defer kernels.SetImpl(old)
	for _, name := range kernels.Impls() {
		if err := kernels.SetImpl(name); err != nil {
			t.Fatal(err)
		}
		t.Run(name, f)
	}
}

// TestForwardFixtureEveryKernel holds every kernel implementation to the
// fixture's float64 reference: log-probabilities and log-sum-exps within
// 5e-6, identical top-10 lists, identical greedy decoding through the
// cache, and batched logits identical to single ones.
func TestForwardFixtureEveryKernel(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	m := load(t, dir)
	eachKernelImpl(t, func(t *testing.T) {
		var steps []model.Step
		var singles [][]float32
		for _, seq := range exp.Sequences {
			logits, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true}})
			if err != nil {
				t.Fatal(err)
			}
			singles = append(singles, logits[0])
			steps = append(steps, model.Step{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true})
			V, T := m.Config.VocabSize, len(seq.InputIDs)
			for i := range T {
				lp, lse := logSoftmax(logits[0][i*V : (i+1)*V])
				near(t, seq.Name+" logsumexp", lse, seq.LogsumexpPerPosition[i])
				if i+1 < T {
					near(t, seq.Name+" next-token logprob", lp[seq.InputIDs[i+1]], seq.NextTokenLogprobs[i])
				}
			}
			lp, _ := logSoftmax(logits[0][(T-1)*V:])
			if got := top(lp, 10); !slices.Equal(got, seq.Last.Top10IDs) {
				t.Errorf("%s: top10 %v, want %v", seq.Name, got, seq.Last.Top10IDs)
			}
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
		for _, g := range exp.GreedyAllPrompts {
			if got := greedy(t, m, g.PromptIDs, g.NNew, true); !slices.Equal(got, g.GeneratedIDs) {
				t.Errorf("prompt %q: greedy %v, want %v", g.PromptText, got, g.GeneratedIDs)
			}
		}
	})
}

// TestWeightTypes checks the reduced-precision weight types against the
// float64 reference: next-token log-probabilities within 1e-3 for f16 and
// 2e-2 for q8_0, and the greedy choice (teacher-forced along the recorded
// continuation) the same wherever its recorded margin exceeds 1e-2, on
// every kernel implementation.
//
// bf16 is held to 2e-3 of the fixture's reference, not 1e-3: it keeps 8
// significant bits, so merely rounding the weights (to nearest, the best it
// can do) moves them by up to 2^-9 relative, and on this fixture that alone
// moves a log-probability by up to 1.5e-3 (mean 3e-4; the embedding and the
// blocks contribute about equally), whatever the arithmetic. So each
// converted model is also held to the float64 forward pass of its own
// weights (forward64): within 1e-5 for f16 and bf16, whose weights the
// kernels widen exactly, which is float32 arithmetic's error and nothing
// more; q8_0, which also rounds the inputs of its products, within 2e-2.
func TestWeightTypes(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	base := load(t, dir)
	best := kernels.Impl()
	for _, tc := range []struct {
		dt  kernels.DType
		tol float64
		own float64 // bound against forward64 of the converted weights
	}{{kernels.F16, 1e-3, 1e-5}, {kernels.BF16, 2e-3, 1e-5}, {kernels.Q8_0, 2e-2, 2e-2}} {
		m, err := base.Convert(tc.dt)
		if err != nil {
			t.Fatal(err)
		}
		var ownRef [][][]float64 // per sequence up to 64 tokens, then per position
		for _, seq := range exp.Sequences {
			var ref [][]float64
			if len(seq.InputIDs) <= 64 {
				ref = forward64(m, seq.InputIDs)
			}
			ownRef = append(ownRef, ref)
		}
		if m.WeightType() != tc.dt || m.WeightBytes() >= base.WeightBytes() {
			t.Fatalf("%v: weight type %v, %d bytes (f32 %d)", tc.dt, m.WeightType(), m.WeightBytes(), base.WeightBytes())
		}
		t.Run(tc.dt.String(), func(t *testing.T) {
			eachKernelImpl(t, func(t *testing.T) {
				var worst, worstOwn float64
				for si, seq := range exp.Sequences {
					if kernels.Impl() != best && len(seq.InputIDs) > 64 {
						// The shorter sequences exercise the same code; the
						// longest go through the default kernels only, to
						// keep the test quick.
						continue
					}
					logits, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: seq.InputIDs, All: true}})
					if err != nil {
						t.Fatal(err)
					}
					V := m.Config.VocabSize
					for i, want := range seq.NextTokenLogprobs {
						lp, _ := logSoftmax(logits[0][i*V : (i+1)*V])
						d := math.Abs(lp[seq.InputIDs[i+1]] - want)
						worst = max(worst, d)
						if d > tc.tol {
							t.Fatalf("%s position %d: logprob %.6f, want %.6f (diff %.2g > %g)", seq.Name, i, lp[seq.InputIDs[i+1]], want, d, tc.tol)
						}
						if ref := ownRef[si]; ref != nil {
							own := logSoftmax64(ref[i])[seq.InputIDs[i+1]]
							d := math.Abs(lp[seq.InputIDs[i+1]] - own)
							worstOwn = max(worstOwn, d)
							if d > tc.own {
								t.Fatalf("%s position %d: logprob %.8f, float64 with the same weights %.8f (diff %.2g > %g)", seq.Name, i, lp[seq.InputIDs[i+1]], own, d, tc.own)
							}
						}
					}
				}
				t.Logf("largest next-token logprob error %.2g (bound %g); against the float64 pass of the same weights %.2g (bound %g)", worst, tc.tol, worstOwn, tc.own)
				for _, g := range exp.GreedyAllPrompts {
					ids := append(slices.Clone(g.PromptIDs), g.GeneratedIDs...)
					logits, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids[:len(ids)-1], All: true}})
					if err != nil {
						t.Fatal(err)
					}
					V := m.Config.VocabSize
					for s, want := range g.GeneratedIDs {
						if g.StepMargins[s] <= 1e-2 {
							continue
						}
						row := logits[0][(len(g.PromptIDs)-1+s)*V:][:V]
						if got := argmax(row); got != want {
							t.Errorf("prompt %q step %d: greedy %d, want %d (margin %.3g)", g.PromptText, s, got, want, g.StepMargins[s])
						}
					}
				}
			})
		})
	}
}

// TestDecodeMatchesPrefill checks, for every weight type and kernel
// implementation, that decoding one token at a time through the cache
// gives the same logits, bit for bit, as one pass over the whole sequence:
// the server's batching and the cache's correctness both rest on it.
func TestDecodeMatchesPrefill(t *testing.T) {
	dir := fixture.HFDir(t)
	base := load(t, dir)
	ids := fixture.LoadExpected(t, dir).Sequences[3].InputIDs
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16, kernels.Q8_0} {
		m, err := base.Convert(dt)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(dt.String(), func(t *testing.T) {
			eachKernelImpl(t, func(t *testing.T) {
				whole, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids, All: true}})
				if err != nil {
					t.Fatal(err)
				}
				V := m.Config.VocabSize
				c := m.NewCache()
				for i, id := range ids {
					one, err := m.Forward([]model.Step{{Cache: c, Tokens: []int{id}}})
					if err != nil {
						t.Fatal(err)
					}
					if !slices.Equal(one[0], whole[0][i*V:(i+1)*V]) {
						t.Fatalf("position %d: decoding through the cache differs from the whole pass", i)
					}
				}
			})
		})
	}
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

func ExampleModel_Convert() {
	m, err := model.New(model.Presets["gpt2"])
	if err != nil {
		panic(err)
	}
	q, err := m.Convert(kernels.Q8_0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%v: %d MB of weights read per token (f32: %d MB)\n", q.WeightType(), q.WeightBytes()>>20, m.WeightBytes()>>20)
	// Output: q8_0: 132 MB of weights read per token (f32: 471 MB)
}
