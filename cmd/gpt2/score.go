package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/sample"
	"github.com/gpt2go/gpt2/tokenizer"
)

// scoreTop is how many of the most likely next tokens score reports.
const scoreTop = 10

// scoreResult is score's JSON output.
type scoreResult struct {
	IDs      []int     `json:"ids"`
	Logprobs []float64 `json:"logprobs"` // [i] = log p(ids[i+1] | ids[:i+1])
	Next     struct {
		Top       []topToken `json:"top"` // most likely first
		Logsumexp float64    `json:"logsumexp"`
	} `json:"next"`
}

// topToken is a likely next token, written in JSON as [id, logprob].
type topToken sample.TokenLogprob

func (t topToken) MarshalJSON() ([]byte, error) {
	return json.Marshal([2]any{t.ID, t.Logprob})
}

func newScoreCmd() *cobra.Command {
	var (
		modelPath, text, idList string
		jsonOut, allowSpecial   bool
	)
	cmd := &cobra.Command{
		Use:   "score",
		Short: "Print the log-probability the model gives each token of a text",
		Long: `Score runs the model over --text, --ids 1,2,3, or else the text on stdin, and
prints, for each token after the first, its log-probability given the tokens
before it (natural log), then the distribution of the token that would come
next: its 10 most likely tokens and the log-sum-exp of the raw logits.

With --json the output is
  {"ids": [...], "logprobs": [...], "next": {"top": [[id, logprob], ...], "logsumexp": x}}
where logprobs[i] = log p(ids[i+1] | ids[0..i]). No <|endoftext|> is
prepended. Log-softmax is computed in float64.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			if fl.Changed("text") && fl.Changed("ids") {
				return usageError{errors.New("give --text or --ids, not both")}
			}
			m, tok, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()

			var ids []int
			switch {
			case fl.Changed("ids"):
				if ids, err = parseIDList(idList); err != nil {
					return err
				}
			default:
				if !fl.Changed("text") {
					b, err := io.ReadAll(cmd.InOrStdin())
					if err != nil {
						return fmt.Errorf("read stdin: %w", err)
					}
					text = string(b)
				}
				if allowSpecial {
					ids = tok.EncodeSpecial(text)
				} else {
					ids = tok.Encode(text)
				}
			}
			res, err := score(m, ids)
			if err != nil {
				return err
			}
			out := bufio.NewWriter(cmd.OutOrStdout())
			if jsonOut {
				b, err := json.Marshal(res)
				if err != nil {
					return fmt.Errorf("score: %w", err)
				}
				out.Write(append(b, '\n'))
			} else {
				writeScoreTable(out, tok, res)
			}
			return out.Flush()
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory (Hugging Face or OpenAI GPT-2 checkpoint)")
	f.StringVar(&text, "text", "", "text to score (default: all of stdin)")
	f.StringVar(&idList, "ids", "", "comma-separated token ids to score instead of text")
	f.BoolVar(&jsonOut, "json", false, "print JSON")
	f.BoolVar(&allowSpecial, "allow-special", false, "encode special tokens such as <|endoftext|> in --text as their ids")
	return cmd
}

// score runs the model over ids in one pass.
func score(m *model.Model, ids []int) (*scoreResult, error) {
	cfg := m.Config
	switch {
	case len(ids) == 0:
		return nil, errors.New("nothing to score: no tokens")
	case len(ids) > cfg.NCtx:
		return nil, fmt.Errorf("%d tokens is more than the model's context of %d tokens", len(ids), cfg.NCtx)
	}
	for _, id := range ids {
		if id < 0 || id >= cfg.VocabSize {
			return nil, fmt.Errorf("token id %d is outside the model's vocabulary (%d tokens)", id, cfg.VocabSize)
		}
	}
	out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids, All: true}})
	if err != nil {
		return nil, fmt.Errorf("score: %w", err)
	}
	V := cfg.VocabSize
	logits := out[0]
	res := &scoreResult{IDs: ids, Logprobs: make([]float64, len(ids)-1)}
	for i := range res.Logprobs {
		res.Logprobs[i] = sample.Logprob(logits[i*V:(i+1)*V], ids[i+1])
	}
	last := logits[(len(ids)-1)*V:]
	res.Next.Logsumexp = sample.LogSumExp(last)
	for _, t := range sample.TopK(sample.LogSoftmax(last), scoreTop) {
		res.Next.Top = append(res.Next.Top, topToken(t))
	}
	return res, nil
}

// writeScoreTable prints res for people.
func writeScoreTable(w io.Writer, tok *tokenizer.Tokenizer, res *scoreResult) {
	show := func(id int) string {
		b, err := tok.TokenBytes(id)
		if err != nil {
			return "?"
		}
		return strconv.Quote(string(b))
	}
	fmt.Fprintf(w, "%5s %6s  %-24s %10s\n", "pos", "id", "token", "logprob")
	var sum float64
	for i, id := range res.IDs {
		lp := "-"
		if i > 0 {
			lp = fmt.Sprintf("%.4f", res.Logprobs[i-1])
			sum += res.Logprobs[i-1]
		}
		fmt.Fprintf(w, "%5d %6d  %-24s %10s\n", i, id, show(id), lp)
	}
	if n := len(res.Logprobs); n > 0 {
		fmt.Fprintf(w, "\ntotal log-probability %.4f over %d predicted tokens (mean %.4f, perplexity %.4g)\n",
			sum, n, sum/float64(n), math.Exp(-sum/float64(n)))
	}
	fmt.Fprintf(w, "\nmost likely next tokens (logsumexp of the logits %.4f):\n", res.Next.Logsumexp)
	fmt.Fprintf(w, "%5s %6s  %-24s %10s %9s\n", "rank", "id", "token", "logprob", "prob")
	for i, t := range res.Next.Top {
		fmt.Fprintf(w, "%5d %6d  %-24s %10.4f %9.5f\n", i+1, t.ID, show(t.ID), t.Logprob, math.Exp(t.Logprob))
	}
}
