package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/eval"
	"github.com/gpt2go/gpt2/internal/progress"
)

func newEvalCmd() *cobra.Command {
	var (
		modelPath, task, data, suite, dataDir, outPath string
		limit, window, stride, batch                   int
		raw, jsonOut                                   bool
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Evaluate a model zero-shot on the GPT-2 paper's benchmarks",
		Long: `Eval scores the model zero-shot on one benchmark (--task NAME --data FILE) or
on all of the GPT-2 paper's benchmarks found under a directory
(--suite paper --data-dir DIR), printing the results beside the paper's
numbers for the GPT-2 size closest to the model.

Tasks and the files they read (the suite looks for these paths under DIR):
  lambada      lambada/lambada_test.jsonl   OpenAI's LAMBADA, {"text": ...} per line
  cbt-cn       cbt/cbtest_CN_test_2500ex.txt
  cbt-ne       cbt/cbtest_NE_test_2500ex.txt
  wikitext2    wikitext/wikitext-2.wiki.test.tokens
  ptb          ptb/ptb.test.txt
  enwik8       enwik8/enwik8                the 100M-byte file; test = its last 5M bytes
  text8        text8/text8                  the 100M-byte file; test = its last 5M bytes
  wikitext103  wikitext/wikitext-103.wiki.test.tokens
  1bw          1bw/news.en.heldout-00000-of-00050
  wsc          wsc273/wsc273.llmfoundry.jsonl

Language-modelling tasks score the detokenized test text as one stream,
starting from <|endoftext|>, in windows of --window tokens (default n_ctx)
that advance by --stride (default n_ctx/2); each token is scored once, with
the left context the stride allows. They report perplexity per BPE token, per
word and (WikiText, PTB, 1BW) per original benchmark token, as the paper
does, and bits per byte. LAMBADA reports last-word accuracy, its variants
(last token only; the stop-word filter) and last-word perplexity; CBT the
accuracy of the most likely candidate; WSC partial and full scoring. The
exact definitions are in the documentation of package eval.

--raw turns the detokenizers off. --limit N keeps the first N examples, or
the first N lines of a language-modelling text (N words for text8), for a
quick run. A malformed record is reported on stderr with its file and line,
skipped and counted ("skipped"). Progress goes to stderr.

With --json each task's result is printed as one JSON object per line;
--out FILE also writes the results (the suite's, with its table) as JSON.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case (task == "") == (suite == ""):
				return usageError{errors.New("give --task NAME or --suite paper")}
			case suite != "" && suite != "paper":
				return usageError{fmt.Errorf("unknown suite %q (the only suite is paper)", suite)}
			case task != "" && data == "":
				return usageError{errors.New("--task needs --data FILE")}
			case suite != "" && dataDir == "":
				return usageError{errors.New("--suite needs --data-dir DIR")}
			case task != "" && dataDir != "":
				return usageError{errors.New("--data-dir goes with --suite; give --task a file with --data")}
			case suite != "" && data != "":
				return usageError{errors.New("--data goes with --task; give --suite a directory with --data-dir")}
			case limit < 0 || window < 0 || stride < 0 || batch < 0:
				return usageError{errors.New("--limit, --window, --stride and --batch must not be negative")}
			}
			if task != "" && !validTask(task) {
				return usageError{fmt.Errorf("unknown task %q (tasks: %s)", task, strings.Join(eval.TaskNames(), ", "))}
			}

			m, tok, err := openModel(modelPath)
			if err != nil {
				return err
			}
			defer m.Close()

			ctx, stop := signal.NotifyContext(contextOf(cmd), os.Interrupt)
			defer stop()
			bar := newEvalProgress(cmd.ErrOrStderr())
			e := eval.New(m, tok)
			e.Batch = batch
			e.Progress = bar.update
			e.Warn = bar.warn
			o := eval.Options{Limit: limit, Window: window, Stride: stride, Raw: raw}
			stdout := bufio.NewWriter(cmd.OutOrStdout())
			defer stdout.Flush()
			printJSON := func(r eval.Result) error {
				b, err := json.Marshal(r)
				if err != nil {
					return fmt.Errorf("eval: %w", err)
				}
				_, err = stdout.Write(append(b, '\n'))
				return err
			}

			if task != "" {
				r, err := e.Run(ctx, task, data, o)
				bar.finish()
				if err != nil {
					return err
				}
				if jsonOut {
					err = printJSON(r)
				} else {
					err = describeResult(stdout, r, eval.ClosestSize(m.Config.NumParams()).Name)
				}
				if err != nil {
					return err
				}
				return writeJSONFile(outPath, r)
			}

			done := func(r eval.Result) {
				bar.finish()
				if jsonOut {
					if err := printJSON(r); err == nil {
						stdout.Flush()
					}
				}
			}
			sr, err := e.Suite(ctx, dataDir, o, m.Config.NumParams(), done)
			bar.finish()
			if err != nil {
				return err
			}
			if !jsonOut {
				if err := sr.WriteMarkdown(stdout); err != nil {
					return err
				}
			}
			return writeJSONFile(outPath, sr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&modelPath, "model", "", "model directory (Hugging Face or OpenAI GPT-2 checkpoint)")
	f.StringVar(&task, "task", "", "task to run: "+strings.Join(eval.TaskNames(), ", "))
	f.StringVar(&data, "data", "", "the task's data file")
	f.StringVar(&suite, "suite", "", `run every task whose data is under --data-dir ("paper")`)
	f.StringVar(&dataDir, "data-dir", "", "directory with the suite's data files")
	f.StringVar(&outPath, "out", "", "also write the results as JSON to this file")
	f.IntVar(&limit, "limit", 0, "evaluate only the first N examples (lines of text for language modelling)")
	f.IntVar(&window, "window", 0, "language modelling: tokens per window (default n_ctx)")
	f.IntVar(&stride, "stride", 0, "language modelling: tokens the window advances by (default window/2)")
	f.IntVar(&batch, "batch", 0, "sequences run together, each with its own cache (default 8)")
	f.BoolVar(&raw, "raw", false, "score the text as stored, without the benchmark's detokenizer")
	f.BoolVar(&jsonOut, "json", false, "print one JSON object per task")
	return cmd
}

func validTask(name string) bool {
	for _, t := range eval.TaskNames() {
		if t == name {
			return true
		}
	}
	return false
}

func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// writeJSONFile writes v as indented JSON to path, if path is set.
func writeJSONFile(path string, v any) error {
	if path == "" {
		return nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// Written beside the target and renamed, so that an interrupted run
	// never leaves half a file.
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// describeResult prints a result for people.
func describeResult(w io.Writer, r eval.Result, size string) error {
	var b strings.Builder
	pct := func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) }
	switch r := r.(type) {
	case *eval.LMResult:
		fmt.Fprintf(&b, "%s: %d BPE tokens, %d words, %d bytes (window %d, stride %d, detokenized %v)\n",
			r.Task, r.Tokens, r.Words, r.Bytes, r.Window, r.Stride, r.Detokenized)
		fmt.Fprintf(&b, "  nll %.2f nats; perplexity %.3f per BPE token, %.3f per word", r.NLL, r.TokenPPL, r.WordPPL)
		if r.BenchmarkTokens > 0 {
			fmt.Fprintf(&b, ", %.3f per benchmark token (%d)", r.BenchmarkPPL, r.BenchmarkTokens)
		}
		fmt.Fprintf(&b, "; %.4f bits per byte\n", r.BitsPerByte)
	case *eval.LambadaResult:
		fmt.Fprintf(&b, "%s: %d examples (%d skipped): accuracy %s, last token only %s, stop-word filter %s; ppl %.3f\n",
			r.Task, r.N, r.Skipped, pct(r.Accuracy), pct(r.AccuracyLastToken), pct(r.AccuracyStopwordFilter), r.PPL)
	case *eval.ChoiceResult:
		fmt.Fprintf(&b, "%s: %d examples (%d skipped): accuracy %s\n", r.Task, r.N, r.Skipped, pct(r.Accuracy))
	case *eval.WSCResult:
		fmt.Fprintf(&b, "%s: %d examples (%d skipped): accuracy %s with partial scoring, %s with full scoring\n",
			r.Task, r.N, r.Skipped, pct(r.AccuracyPartial), pct(r.AccuracyFull))
	}
	for _, row := range eval.Rows(r, size) {
		if row.Paper != nil {
			fmt.Fprintf(&b, "  paper, GPT-2 %s, %s: %s\n", size, row.Metric, formatPaper(*row.Paper, row.Percent))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatPaper(v float64, pct bool) string {
	if pct {
		return fmt.Sprintf("%.2f%%", v)
	}
	return fmt.Sprintf("%g", v)
}

// evalProgress draws each task's progress bar on stderr (see
// progress.Reporter: in place on a terminal, else a line every 10s).
type evalProgress struct {
	rep  *progress.Reporter
	p    eval.Progress
	have bool
}

func newEvalProgress(w io.Writer) *evalProgress {
	return &evalProgress{rep: progress.New(w, 10*time.Second)}
}

func (b *evalProgress) update(p eval.Progress) {
	b.p, b.have = p, true
	b.rep.Update("%s", b.line(false))
}

// line formats the current state; final reports the time taken.
func (b *evalProgress) line(final bool) string {
	p := b.p
	frac := 0.0
	if p.Total > 0 {
		frac = float64(p.Done) / float64(p.Total)
	}
	const width = 24
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	sec := p.Elapsed.Seconds()
	rate := 0.0
	if sec > 0 {
		rate = float64(p.Fed) / sec
	}
	eta := "?"
	switch {
	case final:
		eta = "done in " + p.Elapsed.Round(time.Second).String()
	case p.Done > 0:
		eta = "ETA " + progress.Duration(time.Duration(float64(p.Elapsed)*float64(p.Total-p.Done)/float64(p.Done)))
	}
	return fmt.Sprintf("%-11s [%s] %5.1f%% %d/%d %s  %.0f tok/s  %s", p.Task, bar, 100*frac, p.Done, p.Total, p.Unit, rate, eta)
}

// finish ends the current task's progress line.
func (b *evalProgress) finish() {
	if b.have {
		b.rep.Update("%s", b.line(true))
		b.rep.Done()
	}
	b.have = false
}

// warn prints a problem on its own line, above the bar.
func (b *evalProgress) warn(err error) {
	b.rep.Print("gpt2: warning: %v", err)
}
