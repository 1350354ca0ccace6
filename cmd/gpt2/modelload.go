package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// openModel loads the model at path (see model.Load) with the tokenizer of
// its directory: its own vocabulary files if it has them, else GPT-2's
// embedded one. An empty path means the default model.
func openModel(path string) (*model.Model, *tokenizer.Tokenizer, error) {
	if path == "" {
		return defaultModel()
	}
	m, err := model.Load(path)
	if err != nil {
		return nil, nil, err
	}
	tok, err := openTokenizer(path)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	if n := tok.VocabSize(); n > m.Config.VocabSize {
		m.Close()
		return nil, nil, fmt.Errorf("%s: the tokenizer has %d tokens but the model embeds only %d", path, n, m.Config.VocabSize)
	}
	return m, tok, nil
}

// openTokenizer returns the tokenizer of the model at path (a directory or
// a .safetensors file in one), or GPT-2's embedded tokenizer when path is
// empty. It does not load the weights.
func openTokenizer(path string) (*tokenizer.Tokenizer, error) {
	if path == "" {
		return tokenizer.Default(), nil
	}
	dir := path
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("open model: %w", err)
	}
	if !st.IsDir() {
		dir = filepath.Dir(path)
	}
	return tokenizer.LoadDir(dir)
}
