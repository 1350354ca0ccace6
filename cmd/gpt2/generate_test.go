package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/tokenizer"
)

type generateOutput struct {
	PromptIDs    []int  `json:"prompt_ids"`
	IDs          []int  `json:"ids"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
}

func parseGenerated(t *testing.T, out string) []generateOutput {
	t.Helper()
	var res []generateOutput
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var g generateOutput
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		res = append(res, g)
	}
	return res
}

func TestGenerateGreedy(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	for _, g := range exp.GreedyAllPrompts[:3] {
		n := fmt.Sprint(g.NNew)
		res := parseGenerated(t, gpt2OK(t, "", "generate", "--model", dir, "--prompt", g.PromptText, "--temperature", "0", "-n", n, "--json"))
		if len(res) != 1 {
			t.Fatalf("%d results", len(res))
		}
		r := res[0]
		want, _ := tokenizer.Default().Decode(g.GeneratedIDs)
		if !slices.Equal(r.PromptIDs, g.PromptIDs) || !slices.Equal(r.IDs, g.GeneratedIDs) || r.Text != want || r.FinishReason != "length" {
			t.Errorf("%q: got %+v, want prompt %v ids %v", g.PromptText, r, g.PromptIDs, g.GeneratedIDs)
		}
		// Streamed text: exactly the generated text (stdout is not a terminal).
		if out := gpt2OK(t, "", "generate", "--model", dir, "--prompt", g.PromptText, "--temperature", "0", "--max-tokens", n); out != want {
			t.Errorf("%q: streamed %q, want %q", g.PromptText, out, want)
		}
	}
	// Beam search with one result, from the OpenAI copy.
	g := exp.GreedyAllPrompts[0]
	res := parseGenerated(t, gpt2OK(t, "", "generate", "--model", fixture.OpenAIDir(t), "--prompt", g.PromptText, "--beams", "3", "-n", "5", "--json"))
	if len(res) != 1 || len(res[0].IDs) != 5 {
		t.Errorf("beams: %+v", res)
	}
}

func TestGenerateSampling(t *testing.T) {
	dir := fixture.HFDir(t)
	args := []string{"generate", "--model", dir, "--prompt", "Once upon a time", "-n", "6", "--num-samples", "3", "--seed", "11", "--top-k", "50", "--json"}
	first := gpt2OK(t, "", args...)
	if again := gpt2OK(t, "", args...); again != first {
		t.Errorf("same seed, different output:\n%s\n%s", first, again)
	}
	res := parseGenerated(t, first)
	if len(res) != 3 {
		t.Fatalf("%d samples, want 3", len(res))
	}
	// Sample 2 with seed 11 is sample 0 with seed 13.
	alone := parseGenerated(t, gpt2OK(t, "", "generate", "--model", dir, "--prompt", "Once upon a time", "-n", "6", "--seed", "13", "--top-k", "50", "--json"))
	if !slices.Equal(alone[0].IDs, res[2].IDs) {
		t.Errorf("seed 13 alone gives %v; sample 2 of seed 11 gave %v", alone[0].IDs, res[2].IDs)
	}
	// Text mode with several samples frames each.
	out := gpt2OK(t, "", "generate", "--model", dir, "--prompt", "Hi", "-n", "3", "--num-samples", "2", "--seed", "1")
	if !strings.Contains(out, "===== SAMPLE 1 =====") || !strings.Contains(out, "===== SAMPLE 2 =====") {
		t.Errorf("samples not framed:\n%s", out)
	}
	// An empty prompt starts from <|endoftext|>.
	res = parseGenerated(t, gpt2OK(t, "", "generate", "--model", dir, "-n", "2", "--seed", "1", "--json"))
	if !slices.Equal(res[0].PromptIDs, []int{tokenizer.EndOfText}) || len(res[0].IDs) != 2 {
		t.Errorf("empty prompt: %+v", res[0])
	}
	// Stop strings end the sample and are not printed.
	res = parseGenerated(t, gpt2OK(t, "", "generate", "--model", dir, "--prompt", "The meaning of life is", "--temperature", "0", "-n", "20", "--stop", "s i", "--json"))
	if res[0].Text != " i" || res[0].FinishReason != "stop" {
		t.Errorf("stop: %+v", res[0])
	}
}

func TestGenerateInteractive(t *testing.T) {
	dir := fixture.HFDir(t)
	exp := fixture.LoadExpected(t, dir)
	g := exp.GreedyAllPrompts[1]
	want, _ := tokenizer.Default().Decode(g.GeneratedIDs[:5])
	out := gpt2OK(t, "\n"+g.PromptText+"\n", "generate", "-i", "--model", dir, "--temperature", "0", "-n", "5")
	for _, s := range []string{"Model prompt >>> ", "Prompt should not be empty!", "===== SAMPLE 1 " + strings.Repeat("=", 40) + "\n" + want + "\n", strings.Repeat("=", 80)} {
		if !strings.Contains(out, s) {
			t.Errorf("interactive output lacks %q:\n%s", s, out)
		}
	}
	if n := strings.Count(out, "Model prompt >>> "); n != 3 {
		t.Errorf("%d prompts shown, want 3 (empty, the prompt, then EOF)", n)
	}
}

func TestGenerateErrors(t *testing.T) {
	dir := fixture.HFDir(t)
	// Without --model the shipped default model answers.
	if res := parseGenerated(t, gpt2OK(t, "", "generate", "--prompt", "hi", "-n", "3", "--json")); len(res[0].IDs) < 1 || len(res[0].IDs) > 3 {
		t.Errorf("default model: %d ids, want 1 to 3", len(res[0].IDs))
	}
	long := strings.Repeat(" hello", 200)
	gpt2Fails(t, "", []string{"generate", "--model", dir, "--prompt", long, "-n", "2"}, "200", "128", "--keep-last")
	res := parseGenerated(t, gpt2OK(t, "", "generate", "--model", dir, "--prompt", long, "-n", "2", "--keep-last", "--temperature", "0", "--json"))
	if len(res[0].PromptIDs) != 127 || len(res[0].IDs) != 2 {
		t.Errorf("--keep-last: prompt of %d, %d ids", len(res[0].PromptIDs), len(res[0].IDs))
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--temperature", "-1"}, "temperature"},
		{[]string{"--top-p", "1.5"}, "top_p"},
		{[]string{"--top-k", "-3"}, "top_k"},
		{[]string{"--num-samples", "0"}, "--num-samples"},
		{[]string{"--beams", "2", "--num-samples", "3"}, "--beams"},
		{[]string{"-n", "-1"}, "--max-tokens"},
		{[]string{"-i", "--prompt", "x"}, "-i"},
	} {
		args := append([]string{"generate", "--model", dir, "--prompt", "x"}, c.args...)
		if c.args[0] == "-i" {
			args = append([]string{"generate", "--model", dir}, c.args...)
		}
		gpt2Fails(t, "", args, c.want)
	}
}
