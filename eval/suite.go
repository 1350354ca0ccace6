package eval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// PaperSize is a GPT-2 size as the paper names it.
type PaperSize struct {
	Name   string
	Params int // as the paper counts them
}

// PaperSizes are the four GPT-2 sizes of the paper.
var PaperSizes = []PaperSize{
	{"117M", 117_000_000},
	{"345M", 345_000_000},
	{"762M", 762_000_000},
	{"1542M", 1_542_000_000},
}

// published holds the paper's zero-shot results by size and metric key:
// Radford et al., 2019, "Language Models are Unsupervised Multitask
// Learners", Table 3 (accuracies in percent, perplexities, bits per byte or
// character), and §3.5 for the Winograd Schema Challenge, whose only number
// in the text is the 1542M model's 70.70% (the smaller sizes are plotted in
// Figure 3, not listed). The LAMBADA accuracy of 1542M, 63.24%, is the one
// with the paper's stop-word filter.
var published = map[string]map[string]float64{
	"117M": {
		"lambada/ppl": 35.13, "lambada/acc": 45.99, "cbt-cn/acc": 87.65, "cbt-ne/acc": 83.4,
		"wikitext2/ppl": 29.41, "ptb/ppl": 65.85, "enwik8/bpb": 1.16, "text8/bpc": 1.17,
		"wikitext103/ppl": 37.50, "1bw/ppl": 75.20,
	},
	"345M": {
		"lambada/ppl": 15.60, "lambada/acc": 55.48, "cbt-cn/acc": 92.35, "cbt-ne/acc": 87.1,
		"wikitext2/ppl": 22.76, "ptb/ppl": 47.33, "enwik8/bpb": 1.01, "text8/bpc": 1.06,
		"wikitext103/ppl": 26.37, "1bw/ppl": 55.72,
	},
	"762M": {
		"lambada/ppl": 10.87, "lambada/acc": 60.12, "cbt-cn/acc": 93.45, "cbt-ne/acc": 88.0,
		"wikitext2/ppl": 19.93, "ptb/ppl": 40.31, "enwik8/bpb": 0.97, "text8/bpc": 1.02,
		"wikitext103/ppl": 22.05, "1bw/ppl": 44.575,
	},
	"1542M": {
		"lambada/ppl": 8.63, "lambada/acc": 63.24, "cbt-cn/acc": 93.30, "cbt-ne/acc": 89.05,
		"wikitext2/ppl": 18.34, "ptb/ppl": 35.76, "enwik8/bpb": 0.93, "text8/bpc": 0.98,
		"wikitext103/ppl": 17.48, "1bw/ppl": 42.16, "wsc/acc": 70.70,
	},
}

// ClosestSize returns the paper's GPT-2 size closest to a parameter count
// (by ratio).
func ClosestSize(params int) PaperSize {
	best := PaperSizes[0]
	for _, s := range PaperSizes[1:] {
		if math.Abs(math.Log(float64(params)/float64(s.Params))) < math.Abs(math.Log(float64(params)/float64(best.Params))) {
			best = s
		}
	}
	return best
}

// Row is one line of the suite's table: a metric of this model beside the
// paper's number for the closest size, if the paper has one.
type Row struct {
	Task   string   `json:"task"`
	Metric string   `json:"metric"`
	Value  float64  `json:"value"`
	Paper  *float64 `json:"paper,omitempty"`
	// Percent marks accuracies, which Value and Paper give in percent.
	Percent bool `json:"percent,omitempty"`
}

// SuiteResult is the outcome of a suite run.
type SuiteResult struct {
	Params    int      `json:"params"`
	PaperSize string   `json:"paper_size"`
	Limit     int      `json:"limit,omitempty"`
	Tasks     []Result `json:"tasks"`
	Table     []Row    `json:"table"`
	Missing   []string `json:"missing,omitempty"` // "task (path)" for data not found
	Failed    []string `json:"failed,omitempty"`  // "task: error" for tasks that failed
}

// Suite runs every task of [Tasks] whose file is present under dataDir,
// for a model with the given parameter count. A task that fails is
// reported (to Warn and in Failed) and the others still run; only
// cancellation of ctx stops the suite. done, if set, is called with each
// result as it comes.
func (e *Evaluator) Suite(ctx context.Context, dataDir string, o Options, params int, done func(Result)) (*SuiteResult, error) {
	size := ClosestSize(params)
	sr := &SuiteResult{Params: params, PaperSize: size.Name, Limit: o.Limit, Tasks: []Result{}}
	for _, t := range Tasks {
		path := filepath.Join(dataDir, filepath.FromSlash(t.File))
		if _, err := os.Stat(path); err != nil {
			sr.Missing = append(sr.Missing, fmt.Sprintf("%s (%s)", t.Task, path))
			continue
		}
		to := o
		if _, lm := lmTasks[t.Task]; !lm {
			to.Window, to.Stride = 0, 0
		}
		r, err := e.Run(ctx, t.Task, path, to)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			e.warn(err)
			sr.Failed = append(sr.Failed, fmt.Sprintf("%s: %v", t.Task, err))
			continue
		}
		sr.Tasks = append(sr.Tasks, r)
		sr.Table = append(sr.Table, Rows(r, size.Name)...)
		if done != nil {
			done(r)
		}
	}
	if len(sr.Tasks) == 0 && len(sr.Failed) == 0 {
		return nil, errors.New("no task data found under " + dataDir)
	}
	return sr, nil
}

// Rows returns the table rows of a result beside the paper's numbers for
// the named size.
func Rows(r Result, size string) []Row {
	pub := published[size]
	row := func(metric, key string, v float64, pct bool) Row {
		rw := Row{Task: r.TaskName(), Metric: metric, Value: v, Percent: pct}
		if pct {
			rw.Value *= 100
		}
		if p, ok := pub[key]; ok && key != "" {
			rw.Paper = &p
		}
		return rw
	}
	t := r.TaskName()
	switch r := r.(type) {
	case *LMResult:
		switch {
		case r.BenchmarkTokens > 0:
			return []Row{row("ppl", t+"/ppl", r.BenchmarkPPL, false)}
		case t == "text8":
			return []Row{row("bits/char", t+"/bpc", r.BitsPerByte, false)}
		default:
			return []Row{row("bits/byte", t+"/bpb", r.BitsPerByte, false)}
		}
	case *LambadaResult:
		return []Row{
			row("ppl", t+"/ppl", r.PPL, false),
			row("acc", t+"/acc", r.Accuracy, true),
			row("acc, stop-word filter", t+"/acc", r.AccuracyStopwordFilter, true),
			row("acc, last token only", "", r.AccuracyLastToken, true),
		}
	case *ChoiceResult:
		return []Row{row("acc", t+"/acc", r.Accuracy, true)}
	case *WSCResult:
		return []Row{
			row("acc, partial scoring", t+"/acc", r.AccuracyPartial, true),
			row("acc, full scoring", "", r.AccuracyFull, true),
		}
	}
	return nil
}

// taskTitles are the benchmarks' names as the paper writes them.
var taskTitles = map[string]string{
	"lambada": "LAMBADA", "cbt-cn": "CBT-CN", "cbt-ne": "CBT-NE", "wikitext2": "WikiText-2",
	"ptb": "PTB", "enwik8": "enwik8", "text8": "text8", "wikitext103": "WikiText-103",
	"1bw": "1BW", "wsc": "Winograd (WSC273)",
}

// WriteMarkdown writes the suite's table in Markdown.
func (sr *SuiteResult) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "| Task | Metric | This model (%s params) | GPT-2 %s (paper) |\n", millions(sr.Params), sr.PaperSize)
	b.WriteString("|---|---|---:|---:|\n")
	for _, r := range sr.Table {
		title := taskTitles[r.Task]
		if title == "" {
			title = r.Task
		}
		paper := "–"
		if r.Paper != nil {
			paper = formatValue(*r.Paper, r.Percent)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", title, r.Metric, formatValue(r.Value, r.Percent), paper)
	}
	b.WriteString("\nPerplexities are per original benchmark token (LAMBADA: per target word); accuracies in percent. " +
		"The paper's 1542M LAMBADA accuracy uses its stop-word filter.\n")
	if sr.Limit > 0 {
		fmt.Fprintf(&b, "Limited run: at most %d examples or lines per task, so not comparable with the paper.\n", sr.Limit)
	}
	for _, m := range sr.Missing {
		fmt.Fprintf(&b, "Not run, data not found: %s.\n", m)
	}
	for _, f := range sr.Failed {
		fmt.Fprintf(&b, "Failed: %s.\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func formatValue(v float64, pct bool) string {
	switch {
	case pct:
		return fmt.Sprintf("%.2f%%", v)
	case v < 10:
		return fmt.Sprintf("%.3f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func millions(n int) string {
	return fmt.Sprintf("%.1fM", float64(n)/1e6)
}
