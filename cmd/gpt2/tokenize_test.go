package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
)

func parseIDs(t *testing.T, s string) []int {
	t.Helper()
	var ids []int
	if err := json.Unmarshal([]byte(s), &ids); err != nil || ids == nil {
		t.Fatalf("output %q is not a JSON array of ids: %v", s, err)
	}
	return ids
}

func TestTokenizeRoundTrip(t *testing.T) {
	if got := parseIDs(t, gpt2OK(t, "", "tokenize", "--text", "Hello world")); !slices.Equal(got, []int{15496, 995}) {
		t.Errorf("tokenize Hello world = %v", got)
	}
	if got := gpt2OK(t, "", "tokenize", "--text", ""); got != "[]\n" {
		t.Errorf("empty text gives %q, want []", got)
	}
	// Special tokens are text unless allowed.
	if got := parseIDs(t, gpt2OK(t, "", "tokenize", "--text", "<|endoftext|>")); len(got) != 7 {
		t.Errorf("<|endoftext|> as text = %v, want 7 tokens", got)
	}
	if got := parseIDs(t, gpt2OK(t, "", "tokenize", "--allow-special", "--text", "a<|endoftext|>")); !slices.Equal(got, []int{64, 50256}) {
		t.Errorf("--allow-special = %v", got)
	}

	texts := []string{
		"Hello world",
		"héllo wörld 🙂 — 日本語\n\n\ttabs  and  spaces \r\n",
		" leading space and trailing newline\n",
		"\ufeffBOM",
	}
	for _, text := range texts {
		ids := gpt2OK(t, text, "tokenize") // all of stdin
		back := gpt2OK(t, ids, "detokenize")
		if back != text {
			t.Errorf("round trip of %q gave %q (ids %s)", text, back, ids)
		}
		list := strings.Trim(strings.TrimSpace(ids), "[]")
		if back := gpt2OK(t, "", "detokenize", "--ids", list); back != text {
			t.Errorf("--ids round trip of %q gave %q", text, back)
		}
	}
	// A model directory's own vocabulary gives the same ids.
	dir := fixture.HFDir(t)
	if got := gpt2OK(t, "", "tokenize", "--model", dir, "--text", texts[1]); got != gpt2OK(t, "", "tokenize", "--text", texts[1]) {
		t.Errorf("the fixture's vocabulary tokenizes differently: %s", got)
	}
	// Ids that split a character come back as the bytes they are.
	if got := gpt2OK(t, "", "detokenize", "--ids", "[447]"); got != "\xe2\x80" {
		t.Errorf("detokenize 447 = %q, want the raw bytes e2 80", got)
	}
}

func TestTokenizeJSONL(t *testing.T) {
	out := gpt2OK(t, "\"Hello world\"\n\"\"\n\"a\\nb\"\n", "tokenize", "--jsonl")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := [][]int{{15496, 995}, {}, {64, 198, 65}}
	if len(lines) != len(want) {
		t.Fatalf("output %q: %d lines, want %d", out, len(lines), len(want))
	}
	for i, line := range lines {
		if got := parseIDs(t, line); !slices.Equal(got, want[i]) {
			t.Errorf("line %d: %v, want %v", i+1, got, want[i])
		}
	}
	// A last line without a newline counts.
	if out := gpt2OK(t, "\"x\"", "tokenize", "--jsonl"); out != "[87]\n" {
		t.Errorf("unterminated line: %q", out)
	}
	gpt2Fails(t, "\"ok\"\nnot json\n", []string{"tokenize", "--jsonl"}, "line 2")
	gpt2Fails(t, "\"ok\"\n\n\"ok\"\n", []string{"tokenize", "--jsonl"}, "line 2")
	gpt2Fails(t, "", []string{"tokenize", "--jsonl", "--text", "x"}, "--jsonl")
}

func TestDetokenizeErrors(t *testing.T) {
	gpt2Fails(t, "", []string{"detokenize", "--ids", "15496,99999"}, "99999")
	gpt2Fails(t, "", []string{"detokenize", "--ids", "-1"}, "-1")
	gpt2Fails(t, "", []string{"detokenize", "--ids", "1,x"}, "x")
	gpt2Fails(t, "[1, 2", []string{"detokenize"}, "JSON")
	gpt2Fails(t, `["a"]`, []string{"detokenize"}, "JSON")
	gpt2Fails(t, "", []string{"detokenize", "stray"}, "no arguments")
	if _, _, code := gpt2(t, "", "detokenize", "--no-such-flag"); code != 2 {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}
}
