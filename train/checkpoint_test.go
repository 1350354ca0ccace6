package train

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/format/half"
	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
	"github.com/gpt2go/gpt2/train/data"
)

func tinyLayout(t *testing.T) (*Layout, []float32) {
	t.Helper()
	l, err := NewLayout(model.Config{NLayer: 2, NHead: 2, NEmbd: 8, NCtx: 16, VocabSize: 50257, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	p := make([]float32, l.Size)
	Init(l, p, 3)
	for i := range p {
		p[i] += float32(i%7) * 1e-3 // biases and gains differ from their init too
	}
	return l, p
}

// SaveCheckpoint writes a Hugging Face directory that model.Load reads
// back: exactly in F32, to F16 rounding in F16.
func TestSaveCheckpoint(t *testing.T) {
	l, p := tinyLayout(t)
	m := l.View(p)
	for _, dtype := range []SaveDType{SaveF32, SaveF16} {
		dir := filepath.Join(t.TempDir(), "model")
		if err := SaveCheckpoint(dir, m, tokenizer.Default(), dtype); err != nil {
			t.Fatal(err)
		}
		got, err := model.Load(dir)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Flatten(l, got)
		got.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range p {
			want := p[i]
			if dtype == SaveF16 {
				want = half.F16ToF32(half.F32ToF16(want))
			}
			if back[i] != want {
				t.Fatalf("%s: parameter %d = %g, want %g", dtype, i, back[i], want)
			}
		}
		var cfg map[string]any
		raw, _ := os.ReadFile(filepath.Join(dir, "config.json"))
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		for k, v := range map[string]any{"n_positions": 16.0, "n_ctx": 16.0, "activation_function": "gelu_new", "model_type": "gpt2"} {
			if cfg[k] != v {
				t.Errorf("config.json %s = %v, want %v", k, cfg[k], v)
			}
		}
		if a, _ := cfg["architectures"].([]any); len(a) != 1 || a[0] != "GPT2LMHeadModel" {
			t.Errorf("config.json architectures = %v", cfg["architectures"])
		}
		if _, err := tokenizer.LoadDir(dir); err != nil {
			t.Errorf("tokenizer files: %v", err)
		}
	}
}

func TestStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), stateFile)
	st := &State{Step: 7, AdamStep: 7, NParams: 3, M: []float32{1, 2, 3}, V: []float32{4, 5, float32(math.Inf(1))},
		Data:    DataState{Position: data.Position{Epoch: 1, Shard: 2, Offset: 3}, Shards: []string{"a.bin"}, Tokens: []int{9}},
		History: History{Train: []float64{3, 2.5}, Val: []ValPoint{{Step: 0, Loss: 3.1}}},
		Options: Options{LR: 1e-3, Seed: 5}}
	if err := writeState(path, st); err != nil {
		t.Fatal(err)
	}
	got, err := readState(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Step != 7 || !slices.Equal(got.M, st.M) || !slices.Equal(got.V, st.V) || got.Data.Position != st.Data.Position ||
		!slices.Equal(got.History.Train, st.History.Train) || got.Options.LR != 1e-3 || got.Options.Seed != 5 {
		t.Fatalf("read back %+v", got)
	}
	raw, _ := os.ReadFile(path)
	for _, damage := range []func([]byte) []byte{
		func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		func(b []byte) []byte { return b[:len(b)-5] },
		func(b []byte) []byte { b[0] = 'X'; return b },
	} {
		os.WriteFile(path, damage(slices.Clone(raw)), 0o644)
		if _, err := readState(path); err == nil {
			t.Error("damaged state file accepted")
		}
	}
}

// A resume picks the checkpoint latest names; if that one is damaged, the
// newest intact one; and refuses a directory with none.
func TestLoadCheckpoint(t *testing.T) {
	l, p := tinyLayout(t)
	dir := t.TempDir()
	s := &saver{dir: dir, tok: tokenizer.Default(), dtype: SaveF32, crash: func(string) {}}
	st := func(step int) *State {
		return &State{Step: step, AdamStep: step, Config: l.Config, M: make([]float32, l.Size), V: make([]float32, l.Size)}
	}
	if err := s.save(l, p, st(2)); err != nil {
		t.Fatal(err)
	}
	// Keep ckpt-000002 as an older checkpoint beside the next one.
	os.Rename(filepath.Join(dir, "ckpt-000002"), filepath.Join(dir, "keep"))
	p4 := slices.Clone(p)
	p4[0] += 1
	if err := s.save(l, p4, st(4)); err != nil {
		t.Fatal(err)
	}
	os.Rename(filepath.Join(dir, "keep"), filepath.Join(dir, "ckpt-000002"))

	got, params, name, err := loadCheckpoint(dir)
	if err != nil || name != "ckpt-000004" || got.Step != 4 || !slices.Equal(params, p4) {
		t.Fatalf("loadCheckpoint = %v, %s, %v", got, name, err)
	}
	// Weights that do not match the state are refused.
	m := l.View(slices.Clone(p))
	if err := SaveCheckpoint(filepath.Join(dir, "ckpt-000004"), m, nil, SaveF32); err != nil {
		t.Fatal(err)
	}
	got, params, name, err = loadCheckpoint(dir)
	if err != nil || name != "ckpt-000002" || got.Step != 2 || !slices.Equal(params, p) {
		t.Fatalf("with ckpt-000004 damaged: %v, %s, %v", got, name, err)
	}
	os.RemoveAll(filepath.Join(dir, "ckpt-000002"))
	if _, _, _, err := loadCheckpoint(dir); !errors.Is(err, ErrNoCheckpoint) || !strings.Contains(err.Error(), "not those") {
		t.Fatalf("no intact checkpoint: %v", err)
	}
	if _, _, _, err := loadCheckpoint(filepath.Join(dir, "nope")); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("missing directory: %v", err)
	}
	// The top level is the latest model, loadable.
	top, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer top.Close()
	if top.WTE.F32[0] != p4[0] {
		t.Fatal("top-level model is not the latest checkpoint's")
	}
}

func TestMergeResumed(t *testing.T) {
	saved := DefaultOptions()
	saved.LR, saved.Steps, saved.Data, saved.Batch = 1e-3, 100, "data", 8
	o := DefaultOptions()
	o.Steps, o.LR, o.Resume = 200, 5, "run"
	o.Set = map[string]bool{"steps": true}
	got := mergeResumed(saved, o)
	if got.Steps != 200 || got.LR != 1e-3 || got.Data != "data" || got.Batch != 8 || got.Out != "run" {
		t.Fatalf("merged %+v", got)
	}
}

// Flatten refuses what training cannot represent.
func TestFlattenUntied(t *testing.T) {
	m, err := model.Load(fixture.HFDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, _ := NewLayout(m.Config)
	head := m.WTE
	head.F32 = slices.Clone(head.F32)
	m.LMHead = &head
	if _, err := Flatten(l, m); err != nil {
		t.Fatalf("lm_head equal to wte: %v", err)
	}
	head.F32[5] += 1
	if _, err := Flatten(l, m); err == nil || !strings.Contains(err.Error(), "lm_head") {
		t.Fatalf("untied lm_head: %v", err)
	}
}
