package eval

import (
	"context"
	"fmt"
)

// windowJob is one window of a token stream.
type windowJob struct {
	*choiceJob
	index int
}

// Windows returns the windows that score a stream of L text tokens (after
// the start token) with window w and stride s, as half-open ranges of the
// stream x = [BOS] + ids: window k feeds x[Start:End] and scores the targets
// x[First:End+1]. See the package comment for the definition.
func Windows(L, w, s int) []Window {
	var ws []Window
	prevEnd := 0
	for k := 0; L > 0; k++ {
		start := k * s
		end := min(start+w, L)
		ws = append(ws, Window{Start: start, End: end, First: max(prevEnd+1, start+1)})
		if end == L {
			break
		}
		prevEnd = end
	}
	return ws
}

// Window is one window of a token stream; see [Windows].
type Window struct {
	Start, End int // tokens fed: x[Start:End]
	First      int // first target scored: x[First:End+1] are scored
}

// checkWindow validates a window and stride against the context length.
func checkWindow(w, s, nctx int) error {
	if !(0 < s && s <= w && w <= nctx) {
		return fmt.Errorf("window %d and stride %d must satisfy 0 < stride <= window <= n_ctx (%d)", w, s, nctx)
	}
	return nil
}

// StreamNLL returns the total negative log-likelihood, in nats, of ids as
// one stream after the start token, scored with window w and stride s
// (see the package comment). It is the one scoring routine of every
// language-modelling task.
func (e *Evaluator) StreamNLL(ctx context.Context, task string, ids []int, w, s int) (float64, error) {
	if err := e.check(); err != nil {
		return 0, err
	}
	if err := checkWindow(w, s, e.NCtx); err != nil {
		return 0, fmt.Errorf("%s: %w", task, err)
	}
	x := make([]int, 0, len(ids)+1)
	x = append(append(x, e.BOS), ids...)
	windows := Windows(len(ids), w, s)
	nll := make([]float64, len(windows))
	tr := e.track(task, "tokens", len(ids))
	k := 0
	next := func() (job, bool) {
		if k == len(windows) {
			return nil, false
		}
		win := windows[k]
		j := &windowJob{choiceJob: newChoice(x[win.Start:win.First], [][]int{x[win.First : win.End+1]}, e.VocabSize), index: k}
		k++
		return j, true
	}
	finish := func(j job) {
		wj := j.(*windowJob)
		nll[wj.index] = -wj.scores[0].logp
		tr.done(len(wj.conts[0]))
	}
	if err := e.run(ctx, tr, next, finish); err != nil {
		return 0, fmt.Errorf("%s: %w", task, err)
	}
	// Summed in window order, so the total does not depend on batching.
	var total float64
	for _, v := range nll {
		total += v
	}
	return total, nil
}
