package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var (
		modelPath, text     string
		allowSpecial, jsonl bool
	)
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Print the GPT-2 token ids of text",
		Long: `Tokenize prints the token ids of --text, or of all of stdin, as a JSON
array. With --jsonl, each line of stdin is a JSON string and each line of
output the array of its ids.

The vocabulary is the model directory's own (vocab.json + merges.txt, or
encoder.json + vocab.bpe) with --model, else GPT-2's. Special tokens such as
<|endoftext|> are encoded as plain text unless --allow-special is given.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			textSet := cmd.Flags().Changed("text")
			if jsonl && textSet {
				return usageError{errors.New("--jsonl reads stdin; it cannot be combined with --text")}
			}
			tok, err := openTokenizer(modelPath)
			if err != nil {
				return err
			}
			encode := tok.Encode
			if allowSpecial {
				encode = tok.EncodeSpecial
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			if jsonl {
				if err := tokenizeLines(cmd.InOrStdin(), out, encode); err != nil {
					out.Flush()
					return err
				}
				return out.Flush()
			}
			if !textSet {
				b, err := io.ReadAll(cmd.InOrStdin())
				if err != nil {
					return fmt.Errorf("read stdin: %w", err)
				}
				text = string(b)
			}
			if err := writeIDs(out, encode(text)); err != nil {
				return err
			}
			return out.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory whose vocabulary to use (default: GPT-2's)")
	f.StringVar(&text, "text", "", "text to tokenize (default: all of stdin)")
	f.BoolVar(&allowSpecial, "allow-special", false, "encode special tokens such as <|endoftext|> as their ids")
	f.BoolVar(&jsonl, "jsonl", false, "read one JSON string per line of stdin, write one array of ids per line")
	return cmd
}

// tokenizeLines encodes each line of r, a JSON string, into a line of w.
func tokenizeLines(r io.Reader, w *bufio.Writer, encode func(string) []int) error {
	in := bufio.NewReader(r)
	for n := 1; ; n++ {
		line, err := in.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read stdin: %w", err)
		}
		if line == "" && err == io.EOF {
			return nil
		}
		var s string
		if jerr := json.Unmarshal([]byte(line), &s); jerr != nil {
			if strings.TrimSpace(line) == "" {
				return fmt.Errorf("stdin line %d is empty; want a JSON string", n)
			}
			return fmt.Errorf("stdin line %d: want a JSON string: %v", n, jerr)
		}
		if err := writeIDs(w, encode(s)); err != nil {
			return err
		}
		// Flush each line, so that a program feeding lines one by one gets
		// each answer as it goes.
		if err := w.Flush(); err != nil {
			return err
		}
		if err == io.EOF {
			return nil
		}
	}
}

// writeIDs writes ids as a JSON array and a newline.
func writeIDs(w io.Writer, ids []int) error {
	if ids == nil {
		ids = []int{}
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// noArgs rejects positional arguments, as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError{fmt.Errorf("%s takes no arguments (got %q); see --help", cmd.CommandPath(), args[0])}
	}
	return nil
}
