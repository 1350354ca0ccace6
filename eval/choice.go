package eval

import (
	"context"
	"fmt"
)

// A ChoiceExample is a multiple-choice question: one context per option
// (or one shared by all), one continuation per option, and the index of the
// right option. Options are compared by the log-probability of their
// continuation given their context.
type ChoiceExample struct {
	Contexts      []string // one per option, or a single shared one
	Continuations []string // one per option
	Answer        int
	// Start, if set, puts the start-of-document token in front of every
	// context, so that a context may be empty and the continuation's
	// first token is scored too.
	Start bool
}

// choiceItem is a ChoiceExample as tokens, ready to run.
type choiceItem struct {
	groups []choiceGroup // options sharing a context
	n      int           // options
	answer int
}

// choiceGroup is a context and the options that continue it.
type choiceGroup struct {
	ctx     []int
	conts   [][]int
	options []int // option index of each continuation
}

// choiceJobOf is a choiceJob tagged with its example and group.
type choiceJobOf struct {
	*choiceJob
	ex, group int
}

// prepare tokenizes an example and fits its contexts to n_ctx.
func (e *Evaluator) prepare(ex ChoiceExample) (choiceItem, error) {
	n := len(ex.Continuations)
	switch {
	case n < 2:
		return choiceItem{}, fmt.Errorf("%d options; want at least 2", n)
	case len(ex.Contexts) != 1 && len(ex.Contexts) != n:
		return choiceItem{}, fmt.Errorf("%d contexts for %d options", len(ex.Contexts), n)
	case ex.Answer < 0 || ex.Answer >= n:
		return choiceItem{}, fmt.Errorf("answer %d outside the %d options", ex.Answer, n)
	}
	it := choiceItem{n: n, answer: ex.Answer}
	encodeCtx := func(s string) []int {
		var ids []int
		if ex.Start {
			ids = append(ids, e.BOS)
		}
		return append(ids, e.Tokenizer.Encode(s)...)
	}
	conts := make([][]int, n)
	for i, c := range ex.Continuations {
		if conts[i] = e.Tokenizer.Encode(c); len(conts[i]) == 0 {
			return choiceItem{}, fmt.Errorf("option %d has an empty continuation", i)
		}
	}
	if len(ex.Contexts) == 1 {
		ctx, ok := fitContext(encodeCtx(ex.Contexts[0]), longest(conts), e.NCtx)
		if !ok {
			return choiceItem{}, fmt.Errorf("empty context, or a continuation longer than n_ctx %d", e.NCtx)
		}
		opts := make([]int, n)
		for i := range opts {
			opts[i] = i
		}
		it.groups = []choiceGroup{{ctx: ctx, conts: conts, options: opts}}
		return it, nil
	}
	for i, c := range ex.Contexts {
		ctx, ok := fitContext(encodeCtx(c), len(conts[i]), e.NCtx)
		if !ok {
			return choiceItem{}, fmt.Errorf("option %d: empty context, or continuation longer than n_ctx %d", i, e.NCtx)
		}
		it.groups = append(it.groups, choiceGroup{ctx: ctx, conts: [][]int{conts[i]}, options: []int{i}})
	}
	return it, nil
}

// Choices scores multiple-choice examples and returns, for each, the
// log-probability of every option's continuation (nil for an example that
// was skipped, with a warning, because it could not be prepared) and the
// number skipped. task names the task in progress reports and messages.
func (e *Evaluator) Choices(ctx context.Context, task string, exs []ChoiceExample) ([][]float64, int, error) {
	tr := e.track(task, "examples", len(exs))
	return e.choices(ctx, task, tr, exs, func(int) { tr.done(1) })
}

// choices is Choices reporting progress to tr, and calling done with the
// index of each example once it is scored or skipped.
func (e *Evaluator) choices(ctx context.Context, task string, tr *tracker, exs []ChoiceExample, done func(int)) ([][]float64, int, error) {
	if err := e.check(); err != nil {
		return nil, 0, err
	}
	items := make([]choiceItem, len(exs))
	scores := make([][]float64, len(exs))
	left := make([]int, len(exs)) // groups of each example still running
	skipped := 0
	for i, ex := range exs {
		it, err := e.prepare(ex)
		if err != nil {
			e.warn(fmt.Errorf("%s: example %d: %w; skipped", task, i+1, err))
			skipped++
			done(i)
			continue
		}
		items[i] = it
		scores[i] = make([]float64, it.n)
		left[i] = len(it.groups)
	}
	ex, g := 0, 0
	next := func() (job, bool) {
		for ex < len(items) && g == len(items[ex].groups) {
			ex, g = ex+1, 0
		}
		if ex == len(items) {
			return nil, false
		}
		gr := items[ex].groups[g]
		j := &choiceJobOf{choiceJob: newChoice(gr.ctx, gr.conts, e.VocabSize), ex: ex, group: g}
		g++
		return j, true
	}
	finish := func(jb job) {
		j := jb.(*choiceJobOf)
		gr := items[j.ex].groups[j.group]
		for k, s := range j.scores {
			scores[j.ex][gr.options[k]] = s.logp
		}
		if left[j.ex]--; left[j.ex] == 0 {
			done(j.ex)
		}
	}
	if err := e.run(ctx, tr, next, finish); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", task, err)
	}
	return scores, skipped, nil
}

// best returns the index of the highest score, the first one on ties.
func best(scores []float64) int {
	b := 0
	for i, s := range scores {
		if s > scores[b] {
			b = i
		}
	}
	return b
}
