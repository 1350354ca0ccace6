// Package quant writes GPT-2 models whose weight matrices are stored in
// reduced precision (f16, bf16 or q8_0) as Hugging Face style directories
// that model.Load reads back, weights used in place.
//
// The layout is model.safetensors with Hugging Face tensor names (no
// "transformer." prefix), config.json and the tokenizer's vocab.json and
// merges.txt. The weight matrices (wte, and the c_attn, attn.c_proj, c_fc
// and mlp.c_proj weights of each block) are F16 or BF16 tensors, or for
// q8_0 an I8 tensor of the quantized values in the usual [rows, cols]
// shape plus an F32 tensor model.Q8Scale(name) = name+"_scale" of shape
// [rows, cols/32]: one scale per 32 consecutive values of a row, the value
// being int8 * scale; the blocks' q8_0 matrices are stored transposed,
// [out, in] with their blocks along the input axis (as GGUF does), which
// the metadata entry model.Q8LinearKey says. Biases, layer norms and wpe
// stay F32. The header's metadata says so: "gpt2.weight_type" is f16,
// bf16 or q8_0.
package quant

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/gpt2go/gpt2/format/safetensors"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Save writes m, in the weight types it holds, into dir (created if need
// be): model.safetensors, config.json and, if tok is not nil, the
// tokenizer's files. model.safetensors is replaced atomically.
func Save(dir string, m *model.Model, tok *tokenizer.Tokenizer) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	tensors, err := Tensors(m)
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	meta := map[string]string{"format": "pt", "gpt2.weight_type": m.WeightType().String()}
	if m.WeightType() == kernels.Q8_0 {
		meta["gpt2.q8_0"] = fmt.Sprintf("I8 weight tensors; NAME_scale (F32) holds one scale per %d consecutive values along the last axis; value = int8 * scale", kernels.Q8Block)
		if len(m.Blocks) > 0 && m.Blocks[0].Attn.W.T {
			meta[model.Q8LinearKey] = model.Q8LinearOutIn
		}
	}
	if err := safetensors.WriteFile(filepath.Join(dir, "model.safetensors"), tensors, meta); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	cfg, err := model.HFConfigJSON(m.Config, m.WeightType())
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if tok != nil {
		if err := tok.WriteFiles(dir); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	return nil
}

// Tensors returns the model's tensors with Hugging Face names, matrices in
// their stored types (see the package comment). Quantized values are
// views of the model's memory, not copies.
func Tensors(m *model.Model) ([]safetensors.Tensor, error) {
	var out []safetensors.Tensor
	vec := func(name string, v []float32) {
		out = append(out, safetensors.F32Tensor(name, []int{len(v)}, v))
	}
	var err error
	mat := func(name string, w *kernels.Mat) {
		if err == nil {
			var ts []safetensors.Tensor
			ts, err = matTensors(name, w)
			out = append(out, ts...)
		}
	}
	C := m.Config.NEmbd
	mat("wte.weight", &m.WTE)
	out = append(out, safetensors.F32Tensor("wpe.weight", []int{m.Config.NCtx, C}, m.WPE))
	for l := range m.Blocks {
		b := &m.Blocks[l]
		p := fmt.Sprintf("h.%d.", l)
		vec(p+"ln_1.weight", b.LN1G)
		vec(p+"ln_1.bias", b.LN1B)
		mat(p+"attn.c_attn.weight", &b.Attn.W)
		vec(p+"attn.c_attn.bias", b.Attn.B)
		mat(p+"attn.c_proj.weight", &b.AttnProj.W)
		vec(p+"attn.c_proj.bias", b.AttnProj.B)
		vec(p+"ln_2.weight", b.LN2G)
		vec(p+"ln_2.bias", b.LN2B)
		mat(p+"mlp.c_fc.weight", &b.FC.W)
		vec(p+"mlp.c_fc.bias", b.FC.B)
		mat(p+"mlp.c_proj.weight", &b.FCProj.W)
		vec(p+"mlp.c_proj.bias", b.FCProj.B)
	}
	vec("ln_f.weight", m.LNFG)
	vec("ln_f.bias", m.LNFB)
	if m.LMHead != nil {
		mat("lm_head.weight", m.LMHead)
	}
	return out, err
}

func matTensors(name string, w *kernels.Mat) ([]safetensors.Tensor, error) {
	shape := []int{w.Rows, w.Cols}
	if w.T {
		shape = []int{w.Cols, w.Rows} // as stored: [out, in]
	}
	switch w.DType {
	case kernels.F32:
		return []safetensors.Tensor{safetensors.F32Tensor(name, shape, w.F32)}, nil
	case kernels.F16, kernels.BF16:
		b := make([]byte, 2*len(w.U16))
		for i, h := range w.U16 {
			binary.LittleEndian.PutUint16(b[2*i:], h)
		}
		dt := safetensors.F16
		if w.DType == kernels.BF16 {
			dt = safetensors.BF16
		}
		return []safetensors.Tensor{{Name: name, DType: dt, Shape: shape, Data: b}}, nil
	case kernels.Q8_0:
		var q []byte
		if len(w.Q8) > 0 {
			q = unsafe.Slice((*byte)(unsafe.Pointer(&w.Q8[0])), len(w.Q8))
		}
		return []safetensors.Tensor{
			{Name: name, DType: safetensors.I8, Shape: shape, Data: q},
			safetensors.F32Tensor(model.Q8Scale(name), []int{shape[0], shape[1] / kernels.Q8Block}, w.Scales),
		}, nil
	}
	return nil, fmt.Errorf("%s: unknown weight type %v", name, w.DType)
}
