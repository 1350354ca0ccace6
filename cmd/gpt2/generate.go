package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/internal/progress"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/sample"
	"github.com/gpt2go/gpt2/tokenizer"
)

// generated is one sample in generate's JSON output.
type generated struct {
	PromptIDs    []int  `json:"prompt_ids"`
	IDs          []int  `json:"ids"`
	Text         string `json:"text"`
	FinishReason string `json:"finish_reason"`
}

func newGenerateCmd() *cobra.Command {
	var (
		modelPath, prompt                  string
		opts                               sample.Options
		jsonOut, interactive, allowSpecial bool
	)
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Continue a prompt with text from the model",
		Long: `Generate continues --prompt with text sampled from the model, streaming it to
stdout as it comes. Without a prompt it starts a new document from
<|endoftext|>, as OpenAI's unconditional samples do.

-n is short for --max-tokens, the number of new tokens per sample (default:
half the model's context, as in OpenAI's scripts); a sample also ends at
<|endoftext|>, at a --stop string (which is not printed), or when the
context is full. --temperature 0 is greedy decoding. Sample i of
--num-samples uses the seed --seed+i (the default seed is random). --beams B
runs deterministic beam search instead of sampling.

The text is written as it is, with a newline added at the end only when
stdout is a terminal. With --json, each sample is printed instead as one line
  {"prompt_ids": [...], "ids": [...], "text": "...", "finish_reason": "stop"|"length"}
where ids are the generated tokens. With -i, prompts are read from stdin one
line at a time, as in OpenAI's interactive_conditional_samples.py.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			switch {
			case opts.N < 1:
				return usageError{fmt.Errorf("--num-samples must be >= 1 (got %d)", opts.N)}
			case opts.Beams < 1:
				return usageError{fmt.Errorf("--beams must be >= 1 (got %d)", opts.Beams)}
			case opts.Beams > 1 && opts.N > opts.Beams:
				return usageError{fmt.Errorf("--num-samples %d is more than --beams %d", opts.N, opts.Beams)}
			case opts.MaxTokens < 0:
				return usageError{fmt.Errorf("--max-tokens must be >= 0 (got %d)", opts.MaxTokens)}
			case interactive && fl.Changed("prompt"):
				return usageError{errors.New("-i reads prompts from stdin; it cannot be combined with --prompt")}
			}
			if !fl.Changed("seed") {
				opts.Seed = rand.Uint64()
			}
			m, tok, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()
			if opts.MaxTokens == 0 {
				opts.MaxTokens = m.Config.NCtx / 2
			}
			// Check the options before any prompt is read.
			if err := opts.Params.Validate(min(tok.VocabSize(), m.Config.VocabSize)); err != nil {
				return usageError{err}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
			defer stop()

			g := &generator{m: m, tok: tok, opts: opts, json: jsonOut, allowSpecial: allowSpecial, out: cmd.OutOrStdout()}
			if interactive {
				return g.interactive(ctx, cmd.InOrStdin())
			}
			return g.run(ctx, prompt, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory (Hugging Face or OpenAI GPT-2 checkpoint)")
	f.StringVar(&prompt, "prompt", "", "text to continue (default: none, start a new document)")
	f.IntVarP(&opts.MaxTokens, "max-tokens", "n", 0, "new tokens per sample (0: half the context)")
	f.Float64Var(&opts.Temperature, "temperature", 1, "sampling temperature; 0 is greedy decoding")
	f.IntVar(&opts.TopK, "top-k", 0, "sample from the k most likely tokens only (0: all)")
	f.Float64Var(&opts.TopP, "top-p", 1, "sample from the most likely tokens that make up this probability (nucleus sampling; 1: all)")
	f.Uint64Var(&opts.Seed, "seed", 0, "random seed; sample i uses seed+i (default: random)")
	f.StringArrayVar(&opts.Stop, "stop", nil, "end a sample at this string (repeatable)")
	f.BoolVar(&jsonOut, "json", false, "print each sample as a line of JSON instead of streaming text")
	f.IntVar(&opts.N, "num-samples", 1, "samples to generate, in one batch")
	f.IntVar(&opts.Beams, "beams", 1, "beam search with this many beams (1: sample)")
	f.Float64Var(&opts.RepetitionPenalty, "repetition-penalty", 1, "CTRL repetition penalty for tokens in the context (1: off)")
	f.Float64Var(&opts.PresencePenalty, "presence-penalty", 0, "lower the logit of every token generated so far by this")
	f.Float64Var(&opts.FrequencyPenalty, "frequency-penalty", 0, "lower the logit of each token generated so far by this per occurrence")
	f.BoolVar(&opts.KeepLast, "keep-last", false, "keep the end of a prompt longer than the context instead of refusing it")
	f.BoolVar(&allowSpecial, "allow-special", false, "encode special tokens such as <|endoftext|> in the prompt as their ids")
	f.BoolVarP(&interactive, "interactive", "i", false, "read prompts from stdin, one per line, until EOF")
	return cmd
}

// generator runs generate's samples and writes them out.
type generator struct {
	m            *model.Model
	tok          *tokenizer.Tokenizer
	opts         sample.Options
	json         bool
	allowSpecial bool
	out          io.Writer
}

// sampleHeader and sampleFooter frame samples as OpenAI's scripts do.
var (
	sampleHeader = strings.Repeat("=", 40) + " SAMPLE %d " + strings.Repeat("=", 40) + "\n"
	sampleFooter = strings.Repeat("=", 80) + "\n"
)

// run generates the samples for one prompt. framed puts each sample
// between headers, as the interactive mode does and as several samples
// need to be told apart.
func (g *generator) run(ctx context.Context, prompt string, framed bool) error {
	var ids []int
	if g.allowSpecial {
		ids = g.tok.EncodeSpecial(prompt)
	} else {
		ids = g.tok.Encode(prompt)
	}
	framed = framed || g.opts.N > 1
	stream := !g.json && g.opts.N == 1
	w := g.out
	var last string // the end of the streamed text, for the final newline
	if stream && framed {
		fmt.Fprintf(w, sampleHeader, 1)
	}
	var emit func(int, string) error
	if stream {
		emit = func(_ int, text string) error {
			last = text
			_, err := io.WriteString(w, text)
			return err
		}
	}
	results, err := sample.Generate(ctx, g.m, g.tok, ids, g.opts, emit)
	if err != nil {
		if errors.Is(err, model.ErrContext) && !g.opts.KeepLast {
			return fmt.Errorf("%w (--keep-last keeps only its end)", err)
		}
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted")
		}
		return err
	}

	bw := bufio.NewWriter(w)
	switch {
	case g.json:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		for _, r := range results {
			if err := enc.Encode(generated{PromptIDs: r.Prompt, IDs: nonNil(r.Ids), Text: r.Text, FinishReason: r.FinishReason}); err != nil {
				return err
			}
		}
	case stream:
		if framed || progress.IsTerminal(w) && !strings.HasSuffix(last, "\n") {
			bw.WriteString("\n")
		}
	default:
		for i, r := range results {
			fmt.Fprintf(bw, sampleHeader, i+1)
			bw.WriteString(r.Text)
			bw.WriteString("\n")
		}
	}
	if framed && !g.json {
		bw.WriteString(sampleFooter)
	}
	return bw.Flush()
}

// interactive reads prompts from r until EOF and answers each.
func (g *generator) interactive(ctx context.Context, r io.Reader) error {
	in := bufio.NewReader(r)
	for {
		fmt.Fprint(g.out, "Model prompt >>> ")
		line, err := in.ReadString('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read stdin: %w", err)
		}
		if line == "" && err == io.EOF {
			fmt.Fprintln(g.out)
			return nil
		}
		prompt := strings.TrimRight(line, "\r\n")
		if prompt == "" {
			fmt.Fprintln(g.out, "Prompt should not be empty!")
		} else {
			if err := g.run(ctx, prompt, true); err != nil {
				return err
			}
			// Each prompt gets fresh seeds, and the session stays
			// reproducible with --seed.
			g.opts.Seed += uint64(max(g.opts.N, 1))
		}
		if err == io.EOF {
			return nil
		}
	}
}

func nonNil(ids []int) []int {
	if ids == nil {
		return []int{}
	}
	return ids
}
