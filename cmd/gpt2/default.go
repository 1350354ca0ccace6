package main

import (
	"github.com/gpt2go/gpt2/defaultmodel"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// defaultModel is the model used when no --model is given: the one the
// project trained and ships inside the binary.
func defaultModel() (*model.Model, *tokenizer.Tokenizer, error) {
	return defaultmodel.Load()
}
