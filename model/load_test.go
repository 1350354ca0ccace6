package model_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
)

// copyDir copies the regular files of src into a new temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		raw, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func wantError(t *testing.T, dir string, mentions ...string) {
	t.Helper()
	m, err := model.Load(dir)
	if err == nil {
		m.Close()
		t.Fatalf("Load(%s) succeeded, want an error mentioning %q", dir, mentions)
	}
	for _, s := range mentions {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	hf, oa := fixture.HFDir(t), fixture.OpenAIDir(t)

	t.Run("empty dir", func(t *testing.T) { wantError(t, t.TempDir(), "config.json", "hparams.json") })
	t.Run("missing safetensors", func(t *testing.T) {
		d := copyDir(t, hf)
		os.Remove(filepath.Join(d, "model.safetensors"))
		wantError(t, d, "model.safetensors")
	})
	t.Run("missing config", func(t *testing.T) {
		d := copyDir(t, hf)
		os.Remove(filepath.Join(d, "config.json"))
		wantError(t, filepath.Join(d, "model.safetensors"), "config.json")
	})
	t.Run("bad config json", func(t *testing.T) {
		d := copyDir(t, hf)
		os.WriteFile(filepath.Join(d, "config.json"), []byte("{"), 0o644)
		wantError(t, d, "config.json")
	})
	t.Run("config shape disagrees with weights", func(t *testing.T) {
		d := copyDir(t, hf)
		raw, _ := os.ReadFile(filepath.Join(d, "config.json"))
		raw = []byte(strings.Replace(string(raw), `"n_embd": 64`, `"n_embd": 128`, 1))
		os.WriteFile(filepath.Join(d, "config.json"), raw, 0o644)
		wantError(t, d, "shape")
	})
	t.Run("erf gelu refused", func(t *testing.T) {
		d := copyDir(t, hf)
		raw, _ := os.ReadFile(filepath.Join(d, "config.json"))
		raw = []byte(strings.Replace(string(raw), `"gelu_new"`, `"gelu"`, 1))
		os.WriteFile(filepath.Join(d, "config.json"), raw, 0o644)
		wantError(t, d, "activation")
	})
	t.Run("truncated safetensors", func(t *testing.T) {
		d := copyDir(t, hf)
		p := filepath.Join(d, "model.safetensors")
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()-100)
		wantError(t, d, "model.safetensors")
	})
	t.Run("missing openai data", func(t *testing.T) {
		d := copyDir(t, oa)
		os.Remove(filepath.Join(d, "model.ckpt.data-00000-of-00001"))
		wantError(t, d, "model.ckpt.data-00000-of-00001")
	})
	t.Run("corrupt openai data", func(t *testing.T) {
		d := copyDir(t, oa)
		p := filepath.Join(d, "model.ckpt.data-00000-of-00001")
		raw, _ := os.ReadFile(p)
		raw[len(raw)/2] ^= 0xff
		os.WriteFile(p, raw, 0o644)
		wantError(t, d, "checksum")
	})
}
