package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WSCExample is one Winograd schema with the pronoun already replaced by
// each candidate (llm-foundry's winograd_wsc.jsonl).
type WSCExample struct {
	Options      []string `json:"context_options"`
	Continuation string   `json:"continuation"`
	Gold         int      `json:"gold"`
}

// WSCResult is the outcome of the Winograd task. Accuracies are fractions.
type WSCResult struct {
	Task            string  `json:"task"`
	N               int     `json:"n"`
	AccuracyPartial float64 `json:"accuracy_partial"`
	AccuracyFull    float64 `json:"accuracy_full"`
	Skipped         int     `json:"skipped"`
}

// TaskName returns the task's name.
func (r *WSCResult) TaskName() string { return r.Task }

// ReadWSC reads Winograd examples, one JSON object per line. Malformed
// lines are returned as errors naming path and line, and skipped; reading
// stops after limit examples if limit > 0.
func ReadWSC(r io.Reader, path string, limit int) ([]WSCExample, []error, error) {
	var exs []WSCExample
	var bad []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan() && (limit <= 0 || len(exs) < limit); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		ex := WSCExample{Gold: -1}
		err := json.Unmarshal(sc.Bytes(), &ex)
		switch {
		case err != nil:
		case len(ex.Options) < 2:
			err = fmt.Errorf("%d context_options; want at least 2", len(ex.Options))
		case strings.TrimSpace(ex.Continuation) == "":
			err = fmt.Errorf("empty continuation")
		case ex.Gold < 0 || ex.Gold >= len(ex.Options):
			err = fmt.Errorf("gold %d outside the %d options (or missing)", ex.Gold, len(ex.Options))
		}
		if err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: %w", path, line, err))
			continue
		}
		exs = append(exs, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return exs, bad, nil
}

// wscChoices returns the partial- and full-scoring forms of an example:
// partial scores " " + continuation given each option; full scores the
// whole sentence, option and continuation, from the start token.
func wscChoices(ex WSCExample) (partial, full ChoiceExample) {
	cont := strings.TrimLeft(ex.Continuation, " ")
	partial = ChoiceExample{Contexts: ex.Options, Answer: ex.Gold}
	full = ChoiceExample{Contexts: []string{""}, Answer: ex.Gold, Start: true}
	for _, o := range ex.Options {
		partial.Continuations = append(partial.Continuations, " "+cont)
		full.Continuations = append(full.Continuations, strings.TrimRight(o, " ")+" "+cont)
	}
	return partial, full
}

// WSC evaluates Winograd examples with partial and full scoring.
func (e *Evaluator) WSC(ctx context.Context, exs []WSCExample) (*WSCResult, error) {
	const task = "wsc"
	var partial, full []ChoiceExample
	for _, ex := range exs {
		p, f := wscChoices(ex)
		partial = append(partial, p)
		full = append(full, f)
	}
	// Both forms run as one list, partial ones then full ones; an example
	// is done when both of its forms are.
	tr := e.track(task, "examples", len(exs))
	forms := make([]int, len(exs))
	done := func(i int) {
		if i >= len(exs) {
			i -= len(exs)
		}
		if forms[i]++; forms[i] == 2 {
			tr.done(1)
		}
	}
	scores, _, err := e.choices(ctx, task, tr, append(partial, full...), done)
	if err != nil {
		return nil, err
	}
	res := &WSCResult{Task: task}
	var rightP, rightF int
	for i := range exs {
		p, f := scores[i], scores[len(exs)+i]
		if p == nil || f == nil { // already reported by Choices
			res.Skipped++
			continue
		}
		res.N++
		if best(p) == exs[i].Gold {
			rightP++
		}
		if best(f) == exs[i].Gold {
			rightF++
		}
	}
	if res.N > 0 {
		res.AccuracyPartial = float64(rightP) / float64(res.N)
		res.AccuracyFull = float64(rightF) / float64(res.N)
	}
	return res, nil
}

// runWSC reads and evaluates the Winograd file at path.
func (e *Evaluator) runWSC(ctx context.Context, path string, o Options) (*WSCResult, error) {
	exs, bad, err := readExamples(e, "wsc", path, func(r io.Reader) ([]WSCExample, []error, error) {
		return ReadWSC(r, path, o.Limit)
	})
	if err != nil {
		return nil, err
	}
	res, err := e.WSC(ctx, exs)
	if err != nil {
		return nil, err
	}
	res.Skipped += bad
	return res, nil
}
