package main

import (
	"errors"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// defaultModel is the model used when no --model is given.
func defaultModel() (*model.Model, *tokenizer.Tokenizer, error) {
	return nil, nil, errors.New("no model given: pass --model DIR (a Hugging Face or OpenAI GPT-2 checkpoint directory)")
}
