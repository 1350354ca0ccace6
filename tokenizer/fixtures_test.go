package tokenizer

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// sharedDir returns the shared fixtures and data directory: $GPT2_SHARED if
// set, else ../../shared next to the repository. It skips the test if there
// is none.
func sharedDir(t testing.TB) string {
	dir := os.Getenv("GPT2_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures")); err != nil {
		t.Skipf("shared fixtures not found (set GPT2_SHARED to the shared directory): %v", err)
	}
	return dir
}

type tokenizerCase struct {
	ID   int    `json:"id"`
	Cat  string `json:"cat"`
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadCases(t testing.TB) []tokenizerCase {
	path := filepath.Join(sharedDir(t), "fixtures", "tokenizer", "cases.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []tokenizerCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c tokenizerCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s line %d: %v", path, len(cases)+1, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestFixtureCases(t *testing.T) {
	cases := loadCases(t)
	if len(cases) != 1068 {
		t.Errorf("got %d cases, want 1068", len(cases))
	}
	tok := Default()
	failures := 0
	for _, c := range cases {
		got := tok.Encode(c.Text)
		if !slices.Equal(got, c.IDs) {
			failures++
			if failures <= 20 {
				t.Errorf("case %d (%s) %+q:\nEncode = %v\nwant     %v", c.ID, c.Cat, c.Text, got, c.IDs)
			}
		}
		text, err := tok.Decode(c.IDs)
		if err != nil || text != c.Text {
			failures++
			if failures <= 20 {
				t.Errorf("case %d (%s): Decode = %+q, %v; want %+q", c.ID, c.Cat, text, err, c.Text)
			}
		}
		// The slow reference implementation must agree too; the fuzzer
		// relies on it.
		if ref := referenceEncode(c.Text); !slices.Equal(ref, c.IDs) {
			failures++
			if failures <= 20 {
				t.Errorf("case %d (%s): referenceEncode = %v, want %v", c.ID, c.Cat, ref, c.IDs)
			}
		}
	}
	if failures > 0 {
		t.Errorf("%d failures", failures)
	}
}

// The OpenAI-format copy of the vocabulary must load to the same tokenizer.
func TestFixtureVocabDirs(t *testing.T) {
	dir := sharedDir(t)
	for _, sub := range []string{"tiny-real-vocab", "tiny-real-vocab-openai"} {
		tok, err := LoadDir(filepath.Join(dir, "fixtures", sub))
		if err != nil {
			t.Fatal(err)
		}
		if tok != Default() {
			t.Errorf("LoadDir(%s) did not recognise the GPT-2 vocabulary", sub)
		}
	}
}
