package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/internal/progress"
	"github.com/gpt2go/gpt2/tokenizer"
)

func newDetokenizeCmd() *cobra.Command {
	var modelPath, idList string
	cmd := &cobra.Command{
		Use:   "detokenize",
		Short: "Print the text of GPT-2 token ids",
		Long: `Detokenize prints the text of the token ids given by --ids (1,2,3) or, else,
as a JSON array on stdin.

The text is written byte for byte, even where the ids split a UTF-8
character, with nothing added, except that a newline follows it when stdout
is a terminal (and the text does not already end with one).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var ids []int
			var err error
			if cmd.Flags().Changed("ids") {
				ids, err = parseIDList(idList)
			} else {
				ids, err = readIDsJSON(cmd.InOrStdin())
			}
			if err != nil {
				return err
			}
			tok, err := openTokenizer(modelPath)
			if err != nil {
				return err
			}
			text, err := tok.DecodeBytes(ids)
			if err != nil {
				return vocabError(err, tok.VocabSize())
			}
			out := cmd.OutOrStdout()
			if progress.IsTerminal(out) && !bytes.HasSuffix(text, []byte("\n")) {
				text = append(text, '\n')
			}
			_, err = out.Write(text)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory whose vocabulary to use (default: GPT-2's)")
	f.StringVar(&idList, "ids", "", "comma-separated token ids (default: a JSON array on stdin)")
	return cmd
}

// vocabError rewords the tokenizer's unknown-id error.
func vocabError(err error, vocab int) error {
	var ue *tokenizer.UnknownTokenError
	if errors.As(err, &ue) {
		return fmt.Errorf("token id %d is not in the vocabulary (%d tokens)", ue.ID, vocab)
	}
	return err
}

// parseIDList parses "1,2,3" (spaces and enclosing brackets allowed).
func parseIDList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if strings.TrimSpace(s) == "" {
		return []int{}, nil
	}
	parts := strings.Split(s, ",")
	ids := make([]int, len(parts))
	for i, p := range parts {
		id, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return nil, usageError{fmt.Errorf("--ids: item %d (%q) is not an integer", i+1, strings.TrimSpace(p))}
		}
		ids[i] = id
	}
	return ids, nil
}

// readIDsJSON reads a JSON array of integers.
func readIDsJSON(r io.Reader) ([]int, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read stdin: %w", err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil || ids == nil {
		if err == nil {
			err = errors.New("got null")
		}
		return nil, fmt.Errorf("stdin: want a JSON array of token ids: %v", err)
	}
	return ids, nil
}
