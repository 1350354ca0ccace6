package model

import (
	"encoding/json"

	"github.com/gpt2go/gpt2/kernels"
)

// endOfText is GPT-2's <|endoftext|> id, its BOS and EOS token.
const endOfText = 50256

// HFConfigJSON returns a Hugging Face GPT2Config (config.json) describing c
// with weights stored as dt, the inverse of ParseHFConfig. It carries the
// keys transformers expects, so other tools load the checkpoint too.
func HFConfigJSON(c Config, dt kernels.DType) ([]byte, error) {
	torch := map[kernels.DType]string{kernels.F32: "float32", kernels.F16: "float16", kernels.BF16: "bfloat16", kernels.Q8_0: "float32"}[dt]
	m := map[string]any{
		"architectures":                   []string{"GPT2LMHeadModel"},
		"model_type":                      "gpt2",
		"activation_function":             "gelu_new",
		"n_layer":                         c.NLayer,
		"n_head":                          c.NHead,
		"n_embd":                          c.NEmbd,
		"n_positions":                     c.NCtx,
		"n_ctx":                           c.NCtx,
		"n_inner":                         nil,
		"vocab_size":                      c.VocabSize,
		"layer_norm_epsilon":              c.LayerNormEps,
		"bos_token_id":                    endOfText,
		"eos_token_id":                    endOfText,
		"tie_word_embeddings":             true,
		"initializer_range":               0.02,
		"attn_pdrop":                      0.1,
		"embd_pdrop":                      0.1,
		"resid_pdrop":                     0.1,
		"scale_attn_weights":              true,
		"scale_attn_by_inverse_layer_idx": false,
		"reorder_and_upcast_attn":         false,
		"use_cache":                       true,
		"torch_dtype":                     torch,
		"gpt2_weight_type":                dt.String(),
	}
	b, err := json.MarshalIndent(m, "", "  ")
	return append(b, '\n'), err
}
