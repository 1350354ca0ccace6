package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/gpt2go/gpt2/format/safetensors"
	"github.com/gpt2go/gpt2/format/tfckpt"
	"github.com/gpt2go/gpt2/kernels"
)

// Load reads a GPT-2 checkpoint, detecting its format from what path holds:
//   - a Hugging Face directory (config.json + model.safetensors), or the
//     .safetensors file itself with config.json beside it;
//   - OpenAI's original release (hparams.json + a TensorFlow checkpoint:
//     checkpoint, model.ckpt.index, model.ckpt.data-00000-of-00001).
func Load(path string) (*Model, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	if !st.IsDir() {
		if strings.HasSuffix(path, ".safetensors") {
			return loadHF(filepath.Dir(path), path)
		}
		return nil, fmt.Errorf("load model %s: not a directory or a .safetensors file", path)
	}
	switch {
	case exists(filepath.Join(path, "model.safetensors")):
		return loadHF(path, filepath.Join(path, "model.safetensors"))
	case exists(filepath.Join(path, "hparams.json")):
		return loadOpenAI(path)
	case exists(filepath.Join(path, "config.json")):
		return nil, fmt.Errorf("load model %s: config.json is there but model.safetensors is missing", path)
	case exists(filepath.Join(path, "model.ckpt.index")):
		return nil, fmt.Errorf("load model %s: model.ckpt.index is there but hparams.json is missing", path)
	}
	return nil, fmt.Errorf("load model %s: found neither config.json + model.safetensors (Hugging Face) nor hparams.json + model.ckpt.* (OpenAI)", path)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// hfConfig is the part of a Hugging Face GPT2Config that matters here.
type hfConfig struct {
	NLayer       int      `json:"n_layer"`
	NHead        int      `json:"n_head"`
	NEmbd        int      `json:"n_embd"`
	NPositions   int      `json:"n_positions"`
	NCtx         int      `json:"n_ctx"`
	VocabSize    int      `json:"vocab_size"`
	LayerNormEps *float64 `json:"layer_norm_epsilon"`
	Activation   string   `json:"activation_function"`
}

// ParseHFConfig reads a Hugging Face GPT2Config (config.json).
func ParseHFConfig(raw []byte) (Config, error) {
	var h hfConfig
	if err := json.Unmarshal(raw, &h); err != nil {
		return Config{}, fmt.Errorf("parse: %w", err)
	}
	return h.config()
}

func (h hfConfig) config() (Config, error) {
	c := Config{NLayer: h.NLayer, NHead: h.NHead, NEmbd: h.NEmbd, NCtx: h.NPositions, VocabSize: h.VocabSize, LayerNormEps: 1e-5}
	if c.NCtx == 0 {
		c.NCtx = h.NCtx
	}
	if h.LayerNormEps != nil {
		c.LayerNormEps = *h.LayerNormEps
	}
	if h.Activation != "" && h.Activation != "gelu_new" && h.Activation != "gelu_pytorch_tanh" {
		return c, fmt.Errorf("activation_function %q is not supported (GPT-2 uses gelu_new, the tanh form)", h.Activation)
	}
	return c, c.Validate()
}

// tensorSource yields named float32 tensors with their shapes.
type tensorSource interface {
	tensor(name string) ([]float32, []int, error)
}

func loadHF(dir, file string) (*Model, error) {
	cfgPath := filepath.Join(dir, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	cfg, err := ParseHFConfig(raw)
	if err != nil {
		return nil, fmt.Errorf("load model: %s: %w", cfgPath, err)
	}
	f, err := safetensors.Open(file)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	m, err := FromSafetensors(cfg, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("load model %s: %w", file, err)
	}
	m.closer = f
	return m, nil
}

// FromSafetensors builds a model from the tensors of a parsed safetensors
// file with Hugging Face names ("transformer." prefix optional). F32, F16
// and BF16 weight matrices, and Q8_0 ones (see Q8Scale), are used in place,
// so f must stay open while the model is in use.
func FromSafetensors(cfg Config, f *safetensors.File) (*Model, error) {
	prefix := ""
	if _, ok := f.Info("transformer.wte.weight"); ok {
		prefix = "transformer."
	}
	src := stSource{f: f, prefix: prefix, q8OutIn: f.Metadata()[Q8LinearKey] == Q8LinearOutIn}
	m, err := build(cfg, src, hfNames)
	if err != nil {
		return nil, err
	}
	if _, ok := f.Info("lm_head.weight"); ok {
		head, err := src.mat("!lm_head.weight", cfg.VocabSize, cfg.NEmbd, false)
		if err != nil {
			return nil, err
		}
		m.LMHead = &head
	}
	return m, nil
}

type stSource struct {
	f       *safetensors.File
	prefix  string
	q8OutIn bool // linear layers' q8_0 weights are stored [out, in]
}

func (s stSource) fullName(name string) string {
	if rest, ok := strings.CutPrefix(name, "!"); ok { // a name outside the transformer prefix
		return rest
	}
	return s.prefix + name
}

// Q8Scale names the tensor of Q8_0 scales of a weight stored as I8: the
// weight's I8 tensor holds the quantized values in its usual shape
// [rows, cols], and Q8Scale(name), F32 [rows, cols/32], one scale per
// kernels.Q8Block consecutive values of a row (value = int8 * scale).
//
// When the file's metadata has Q8LinearKey = Q8LinearOutIn, the I8
// weights of the blocks' linear layers are stored transposed instead, as
// [out, in] (GGUF's layout) with their scales [out, in/32]: each block of
// 32 runs along the input axis (see kernels.Mat.T). The token embedding
// and an LM head are [vocab, C] either way.
func Q8Scale(name string) string { return name + "_scale" }

// Q8LinearKey and Q8LinearOutIn are the metadata entry that marks the
// linear layers' q8_0 weights as stored [out, in].
const (
	Q8LinearKey   = "gpt2.q8_0_linear"
	Q8LinearOutIn = "out_in"
)

// mat returns a weight matrix in its stored type, without copying it;
// linear says it is a block's [in, out] weight (which q8_0 may store
// transposed).
func (s stSource) mat(name string, rows, cols int, linear bool) (kernels.Mat, error) {
	full := s.fullName(name)
	info, ok := s.f.Info(full)
	if !ok {
		return kernels.Mat{}, fmt.Errorf("tensor %q is missing", full)
	}
	trans := linear && info.DType == safetensors.I8 && s.q8OutIn
	if trans {
		rows, cols = cols, rows
	}
	if err := checkShape(full, info.Shape, rows, cols); err != nil {
		return kernels.Mat{}, err
	}
	switch info.DType {
	case safetensors.F16, safetensors.BF16:
		u, err := s.f.Uint16(full)
		if err != nil {
			return kernels.Mat{}, fmt.Errorf("tensor %q: %w", full, err)
		}
		dt := kernels.F16
		if info.DType == safetensors.BF16 {
			dt = kernels.BF16
		}
		return kernels.NewMat16(rows, cols, dt, u)
	case safetensors.I8:
		b, err := s.f.Bytes(full)
		if err != nil {
			return kernels.Mat{}, fmt.Errorf("tensor %q: %w", full, err)
		}
		sname := Q8Scale(full)
		sinfo, ok := s.f.Info(sname)
		if !ok {
			return kernels.Mat{}, fmt.Errorf("tensor %q is I8 but its q8_0 scales %q are missing", full, sname)
		}
		if cols%kernels.Q8Block != 0 || sinfo.DType != safetensors.F32 {
			return kernels.Mat{}, fmt.Errorf("tensor %q: q8_0 needs F32 scales and a multiple of %d columns (scales %s, %d columns)",
				full, kernels.Q8Block, sinfo.DType, cols)
		}
		if err := checkShape(sname, sinfo.Shape, rows, cols/kernels.Q8Block); err != nil {
			return kernels.Mat{}, err
		}
		scales, err := s.f.Float32(sname)
		if err != nil {
			return kernels.Mat{}, fmt.Errorf("tensor %q: %w", sname, err)
		}
		var q []int8
		if len(b) > 0 {
			q = unsafe.Slice((*int8)(unsafe.Pointer(&b[0])), len(b))
		}
		if trans {
			return kernels.NewMatQ8T(cols, rows, q, scales)
		}
		return kernels.NewMatQ8(rows, cols, q, scales)
	}
	v, err := s.f.Float32(full)
	if err != nil {
		return kernels.Mat{}, fmt.Errorf("tensor %q: %w", full, err)
	}
	return kernels.NewMat(rows, cols, v), nil
}

func (s stSource) tensor(name string) ([]float32, []int, error) {
	full := s.fullName(name)
	info, ok := s.f.Info(full)
	if !ok {
		return nil, nil, fmt.Errorf("tensor %q is missing", full)
	}
	v, err := s.f.Float32(full)
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", full, err)
	}
	return v, info.Shape, nil
}

// names maps the parts of the architecture to a format's tensor names.
type names struct {
	wte, wpe, lnfG, lnfB string
	block                func(l int, part string) string
}

var hfNames = names{
	wte: "wte.weight", wpe: "wpe.weight", lnfG: "ln_f.weight", lnfB: "ln_f.bias",
	block: func(l int, part string) string {
		part = strings.NewReplacer("/g", ".weight", "/b", ".bias", "/w", ".weight", "/", ".").Replace(part)
		return fmt.Sprintf("h.%d.%s", l, part)
	},
}

var openAINames = names{
	wte: "model/wte", wpe: "model/wpe", lnfG: "model/ln_f/g", lnfB: "model/ln_f/b",
	block: func(l int, part string) string { return fmt.Sprintf("model/h%d/%s", l, part) },
}

// build assembles a model from a tensor source, checking every shape.
// Block parts are named in OpenAI's style ("attn/c_attn/w"); names
// translates them.
func build(cfg Config, src tensorSource, n names) (*Model, error) {
	C, V := cfg.NEmbd, cfg.VocabSize
	get := func(name string, dims ...int) ([]float32, error) {
		v, shape, err := src.tensor(name)
		if err != nil {
			return nil, err
		}
		// OpenAI's conv1d weights carry a leading dimension of 1.
		if len(shape) == len(dims)+1 && shape[0] == 1 {
			shape = shape[1:]
		}
		if err := checkShape(name, shape, dims...); err != nil {
			return nil, err
		}
		return v, nil
	}
	// Weight matrices stay in their stored type where the source can
	// hand them out so (safetensors); others are float32.
	mat := func(name string, rows, cols int, linear bool) (kernels.Mat, error) {
		if ms, ok := src.(interface {
			mat(string, int, int, bool) (kernels.Mat, error)
		}); ok {
			return ms.mat(name, rows, cols, linear)
		}
		v, err := get(name, rows, cols)
		if err != nil {
			return kernels.Mat{}, err
		}
		return kernels.NewMat(rows, cols, v), nil
	}
	m := &Model{Config: cfg}
	var err error
	if m.WTE, err = mat(n.wte, V, C, false); err != nil {
		return nil, err
	}
	if m.WPE, err = get(n.wpe, cfg.NCtx, C); err != nil {
		return nil, err
	}
	if m.LNFG, err = get(n.lnfG, C); err != nil {
		return nil, err
	}
	if m.LNFB, err = get(n.lnfB, C); err != nil {
		return nil, err
	}
	for l := range cfg.NLayer {
		var b Block
		vec := func(dst *[]float32, part string, size int) {
			if err == nil {
				*dst, err = get(n.block(l, part), size)
			}
		}
		lin := func(dst *Linear, part string, in, out int) {
			if err != nil {
				return
			}
			if dst.W, err = mat(n.block(l, part+"/w"), in, out, true); err != nil {
				return
			}
			dst.B, err = get(n.block(l, part+"/b"), out)
		}
		vec(&b.LN1G, "ln_1/g", C)
		vec(&b.LN1B, "ln_1/b", C)
		lin(&b.Attn, "attn/c_attn", C, 3*C)
		lin(&b.AttnProj, "attn/c_proj", C, C)
		vec(&b.LN2G, "ln_2/g", C)
		vec(&b.LN2B, "ln_2/b", C)
		lin(&b.FC, "mlp/c_fc", C, 4*C)
		lin(&b.FCProj, "mlp/c_proj", 4*C, C)
		if err != nil {
			return nil, err
		}
		m.Blocks = append(m.Blocks, b)
	}
	return m, nil
}

func checkShape(name string, got []int, want ...int) error {
	if len(got) != len(want) {
		return fmt.Errorf("tensor %q has shape %v, want %v", name, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			return fmt.Errorf("tensor %q has shape %v, want %v", name, got, want)
		}
	}
	return nil
}

// openAIHParams is OpenAI's hparams.json.
type openAIHParams struct {
	NVocab int `json:"n_vocab"`
	NCtx   int `json:"n_ctx"`
	NEmbd  int `json:"n_embd"`
	NHead  int `json:"n_head"`
	NLayer int `json:"n_layer"`
}

func loadOpenAI(dir string) (*Model, error) {
	hpPath := filepath.Join(dir, "hparams.json")
	raw, err := os.ReadFile(hpPath)
	if err != nil {
		return nil, fmt.Errorf("load model: %w", err)
	}
	var hp openAIHParams
	if err := json.Unmarshal(raw, &hp); err != nil {
		return nil, fmt.Errorf("load model: parse %s: %w", hpPath, err)
	}
	cfg := Config{NLayer: hp.NLayer, NHead: hp.NHead, NEmbd: hp.NEmbd, NCtx: hp.NCtx, VocabSize: hp.NVocab, LayerNormEps: 1e-5}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load model: %s: %w", hpPath, err)
	}
	b, err := tfckpt.OpenDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load model %s: OpenAI checkpoint incomplete: %w", dir, err)
		}
		return nil, fmt.Errorf("load model: %w", err)
	}
	defer b.Close()
	m, err := build(cfg, tfSource{b}, openAINames)
	if err != nil {
		return nil, fmt.Errorf("load model %s: %w", dir, err)
	}
	return m, nil
}

type tfSource struct{ b *tfckpt.Bundle }

func (s tfSource) tensor(name string) ([]float32, []int, error) {
	e, ok := s.b.Entry(name)
	if !ok {
		return nil, nil, fmt.Errorf("tensor %q is missing", name)
	}
	v, err := s.b.Float32(name)
	if err != nil {
		return nil, nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	// Float32 may return a view of the mapped file, which Close unmaps.
	return append([]float32(nil), v...), e.Shape, nil
}
