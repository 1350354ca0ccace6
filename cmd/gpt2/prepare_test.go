package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/tokenizer"
	"github.com/gpt2go/gpt2/train/data"
)

func TestPrepareCLI(t *testing.T) {
	in := t.TempDir()
	texts := []string{"First document.\nIt has two lines.\n", "Second one, with <|endoftext|> as plain text."}
	for i, s := range texts {
		if err := os.WriteFile(filepath.Join(in, []string{"a.txt", "b.txt"}[i]), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "shards")
	stdout, stderr, code := gpt2(t, "", "prepare", "--out", out, "--val-files", filepath.Join(in, "b.txt"), in)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "1 train documents") || !strings.Contains(stderr, "2/2 files") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	tok := tokenizer.Default()
	for _, c := range []struct {
		file, text string
	}{{"train_000000.bin", texts[0]}, {"val_000000.bin", texts[1]}} {
		s, err := data.OpenShard(filepath.Join(out, c.file))
		if err != nil {
			t.Fatal(err)
		}
		want := []uint16{tokenizer.EndOfText}
		for _, id := range tok.Encode(c.text) {
			want = append(want, uint16(id))
		}
		if !slices.Equal(s.Tokens(), want) {
			t.Errorf("%s = %v, want %v", c.file, s.Tokens(), want)
		}
		s.Close()
	}

	gpt2Fails(t, "", []string{"prepare", in}, "--out is required")
	gpt2Fails(t, "", []string{"prepare", "--out", out, "--val-fraction", "0.1", "--val-files", "x", in}, "not both")
	gpt2Fails(t, "", []string{"prepare", "--out", out, "--val-fraction", "1.5", in}, "--val-fraction 1.5")
	gpt2Fails(t, "", []string{"prepare", "--out", out, filepath.Join(in, "missing.txt")}, "missing.txt")
}
