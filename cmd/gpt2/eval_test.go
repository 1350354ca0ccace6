package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
)

func TestEvalUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"eval"}, "--task NAME or --suite paper"},
		{[]string{"eval", "--task", "ptb", "--suite", "paper"}, "--task NAME or --suite paper"},
		{[]string{"eval", "--task", "ptb"}, "--data FILE"},
		{[]string{"eval", "--task", "nope", "--data", "x"}, `unknown task "nope"`},
		{[]string{"eval", "--suite", "other", "--data-dir", "x"}, `unknown suite "other"`},
		{[]string{"eval", "--suite", "paper"}, "--data-dir"},
		{[]string{"eval", "--task", "ptb", "--data", "x", "--limit", "-1"}, "must not be negative"},
	} {
		_, errOut, code := gpt2(t, "", c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("gpt2 %q: exit %d, stderr %q; want exit 2 mentioning %q", c.args, code, errOut, c.want)
		}
	}
	dir := fixture.HFDir(t)
	gpt2Fails(t, "", []string{"eval", "--model", dir, "--task", "ptb", "--data", "ptb", "--window", "4096"}, "window 4096")
	gpt2Fails(t, "", []string{"eval", "--model", dir, "--task", "ptb", "--data", filepath.Join(t.TempDir(), "none.txt")}, "none.txt")
}

func TestEvalTaskJSON(t *testing.T) {
	dir := fixture.HFDir(t)
	data := filepath.Join(t.TempDir(), "wsc.jsonl")
	lines := `{"context_options": ["The cat", "The dog"], "continuation": "sat down.", "gold": 0}
{"context_options": ["The cat"], "continuation": "sat.", "gold": 0}
{"context_options": ["A man", "A woman"], "continuation": "walked in.", "gold": 1}
`
	if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(t.TempDir(), "out.json")
	stdout, stderr, code := gpt2(t, "", "eval", "--model", dir, "--task", "wsc", "--data", data, "--json", "--out", outFile)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var r struct {
		Task            string   `json:"task"`
		N               int      `json:"n"`
		Skipped         int      `json:"skipped"`
		AccuracyPartial *float64 `json:"accuracy_partial"`
		AccuracyFull    *float64 `json:"accuracy_full"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || strings.Count(stdout, "\n") != 1 {
		t.Fatalf("stdout %q: %v", stdout, err)
	}
	if r.Task != "wsc" || r.N != 2 || r.Skipped != 1 || r.AccuracyPartial == nil || r.AccuracyFull == nil {
		t.Errorf("result %s", stdout)
	}
	if !strings.Contains(stderr, data+":2:") {
		t.Errorf("stderr %q does not name the malformed line %s:2", stderr, data)
	}
	if b, err := os.ReadFile(outFile); err != nil || !json.Valid(b) || !strings.Contains(string(b), `"task": "wsc"`) {
		t.Errorf("--out file: %q, %v", b, err)
	}

	// CBT on the eval package's fixture: one of three records is malformed.
	stdout = gpt2OK(t, "", "eval", "--model", dir, "--task", "cbt-cn", "--data", "../../eval/testdata/cbt_tiny.txt", "--json", "--batch", "2")
	if !strings.Contains(stdout, `"task":"cbt-cn","n":2,`) || !strings.Contains(stdout, `"skipped":1`) {
		t.Errorf("cbt: %s", stdout)
	}
}

func TestEvalSuite(t *testing.T) {
	dir := fixture.HFDir(t)
	dataDir := t.TempDir()
	// A small copy of the suite's layout: three tasks, the rest missing.
	copyHead := func(rel []string, lines int) {
		b, err := os.ReadFile(fixture.Path(t, append([]string{"data"}, rel...)...))
		if err != nil {
			t.Fatal(err)
		}
		head := strings.SplitAfterN(string(b), "\n", lines+1)[:lines]
		dst := filepath.Join(append([]string{dataDir}, rel...)...)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(strings.Join(head, "")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyHead([]string{"lambada", "lambada_test.jsonl"}, 4)
	copyHead([]string{"ptb", "ptb.test.txt"}, 10)
	copyHead([]string{"wsc273", "wsc273.llmfoundry.jsonl"}, 4)

	outFile := filepath.Join(t.TempDir(), "suite.json")
	stdout, stderr, code := gpt2(t, "", "eval", "--model", dir, "--suite", "paper", "--data-dir", dataDir, "--limit", "3", "--out", outFile)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{
		"| Task | Metric | This model (3.3M params) | GPT-2 117M (paper) |",
		"| LAMBADA | ppl | ", " | 35.13 |",
		"| LAMBADA | acc | ", " | 45.99% |",
		"| PTB | ppl | ", " | 65.85 |",
		"| Winograd (WSC273) | acc, partial scoring | ",
		"Not run, data not found: wikitext2",
		"Limited run: at most 3",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
	var sr struct {
		PaperSize string            `json:"paper_size"`
		Tasks     []json.RawMessage `json:"tasks"`
		Table     []struct {
			Task  string   `json:"task"`
			Value float64  `json:"value"`
			Paper *float64 `json:"paper"`
		} `json:"table"`
		Missing []string `json:"missing"`
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sr); err != nil {
		t.Fatal(err)
	}
	if sr.PaperSize != "117M" || len(sr.Tasks) != 3 || len(sr.Missing) != 7 || len(sr.Table) != 7 {
		t.Errorf("suite JSON: size %s, %d tasks, %d missing, %d rows", sr.PaperSize, len(sr.Tasks), len(sr.Missing), len(sr.Table))
	}

	// --json: one object per task on stdout, no table.
	stdout = gpt2OK(t, "", "eval", "--model", dir, "--suite", "paper", "--data-dir", dataDir, "--limit", "2", "--json")
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], `{"task":"lambada"`) {
		t.Errorf("--json suite output:\n%s", stdout)
	}
}
