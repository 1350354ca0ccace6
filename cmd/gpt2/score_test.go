package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
)

type scoreOutput struct {
	IDs      []int     `json:"ids"`
	Logprobs []float64 `json:"logprobs"`
	Next     struct {
		Top       [][2]float64 `json:"top"`
		Logsumexp float64      `json:"logsumexp"`
	} `json:"next"`
}

func idList(ids []int) string {
	return strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ids)), ","), "[]")
}

func TestScoreJSON(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	const tol = 5e-6
	for _, sq := range exp.Sequences {
		raw := gpt2OK(t, "", "score", "--model", dir, "--ids", idList(sq.InputIDs), "--json")
		var got scoreOutput
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			t.Fatalf("%s: %v in %q", sq.Name, err, raw)
		}
		if fmt.Sprint(got.IDs) != fmt.Sprint(sq.InputIDs) || len(got.Logprobs) != len(sq.InputIDs)-1 || got.Logprobs == nil {
			t.Fatalf("%s: ids %v, %d logprobs", sq.Name, got.IDs, len(got.Logprobs))
		}
		for i, lp := range got.Logprobs {
			if d := math.Abs(lp - sq.NextTokenLogprobs[i]); d > tol {
				t.Errorf("%s: logprob %d is %.9f, want %.9f", sq.Name, i, lp, sq.NextTokenLogprobs[i])
			}
		}
		if d := math.Abs(got.Next.Logsumexp - sq.Last.Logsumexp); d > tol {
			t.Errorf("%s: logsumexp %.9f, want %.9f", sq.Name, got.Next.Logsumexp, sq.Last.Logsumexp)
		}
		if len(got.Next.Top) != 10 {
			t.Fatalf("%s: %d top tokens, want 10", sq.Name, len(got.Next.Top))
		}
		for i, top := range got.Next.Top {
			if int(top[0]) != sq.Last.Top10IDs[i] || math.Abs(top[1]-sq.Last.Top10Logprobs[i]) > tol {
				t.Errorf("%s: top %d is %v, want [%d, %.9f]", sq.Name, i, top, sq.Last.Top10IDs[i], sq.Last.Top10Logprobs[i])
			}
		}
	}

	// Text is tokenized first; the same weights in OpenAI's format give
	// identical output.
	text := exp.GreedyAllPrompts[0].PromptText
	byText := gpt2OK(t, "", "score", "--model", dir, "--text", text, "--json")
	byIDs := gpt2OK(t, "", "score", "--model", dir, "--ids", idList(exp.GreedyAllPrompts[0].PromptIDs), "--json")
	if byText != byIDs {
		t.Errorf("--text and --ids disagree:\n%s\n%s", byText, byIDs)
	}
	if openai := gpt2OK(t, "", "score", "--model", fixture.OpenAIDir(t), "--text", text, "--json"); openai != byText {
		t.Errorf("OpenAI copy scores differently:\n%s\n%s", openai, byText)
	}
	// The table for people.
	table := gpt2OK(t, text, "score", "--model", dir)
	if !strings.Contains(table, "logprob") || !strings.Contains(table, `" meaning"`) {
		t.Errorf("table output:\n%s", table)
	}
}

func TestScoreErrors(t *testing.T) {
	dir := fixture.HFDir(t)
	long := make([]int, 129)
	gpt2Fails(t, "", []string{"score", "--model", dir, "--ids", idList(long)}, "129", "128")
	gpt2Fails(t, "", []string{"score", "--model", dir, "--ids", "1,50257"}, "50257")
	gpt2Fails(t, "", []string{"score", "--model", dir, "--text", ""}, "nothing to score")
	gpt2Fails(t, "", []string{"score", "--model", dir, "--text", "a", "--ids", "1"}, "not both")
	gpt2Fails(t, "", []string{"score", "--ids", "1,50257"}, "50257") // the default model
	gpt2Fails(t, "", []string{"score", "--model", t.TempDir(), "--ids", "1"}, "config.json")
}
