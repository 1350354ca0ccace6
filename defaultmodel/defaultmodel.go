// Package defaultmodel is the small GPT-2 that this project trained itself
// and ships inside the binary, so that generate, score, eval and serve work
// on a fresh machine with no other file.
//
// Shape: 6 layers, 8 heads, n_embd 256, n_ctx 256, GPT-2's 50257-token
// vocabulary (17.7M parameters), fp16 weights. It was trained with
// "gpt2 train" on public-domain text (Project Gutenberg books, the King James
// Bible and Tiny Shakespeare from ../shared/data/corpora); TRAINING.md
// beside this file says how, and its validation loss.
package defaultmodel

import (
	_ "embed"
	"fmt"

	"github.com/gpt2go/gpt2/format/safetensors"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// Name identifies the default model (in the server's model list, say).
const Name = "gpt2-default"

var (
	//go:embed config.json
	configJSON []byte
	//go:embed model.safetensors
	weights []byte
)

// Load returns the default model and its tokenizer (GPT-2's). The weights
// are used in place from the binary's read-only data, so loading costs a
// header parse.
func Load() (*model.Model, *tokenizer.Tokenizer, error) {
	cfg, err := model.ParseHFConfig(configJSON)
	if err != nil {
		return nil, nil, fmt.Errorf("default model: config.json: %w", err)
	}
	f, err := safetensors.Parse(weights)
	if err != nil {
		return nil, nil, fmt.Errorf("default model: %w", err)
	}
	m, err := model.FromSafetensors(cfg, f)
	if err != nil {
		return nil, nil, fmt.Errorf("default model: %w", err)
	}
	return m, tokenizer.Default(), nil
}
