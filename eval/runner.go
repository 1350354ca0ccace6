package eval

import (
	"context"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// A job is one sequence's work in a batch slot: it feeds tokens to its
// cache a piece at a time and reads the logits that come back.
type job interface {
	// next returns the tokens to append to c next (at most max of them) and
	// whether logits are wanted at every one of them (otherwise only the
	// last one's are computed); ok is false once the job is finished. It
	// may truncate c, to branch from a shared prefix.
	next(c *model.Cache, max int) (toks []int, all, ok bool)
	// take receives the logits for the tokens next returned last.
	take(logits []float32)
}

// run feeds jobs through the model, up to one per cache slot at a time. A
// slot whose job finishes takes the next one at once, so sequences of
// different lengths keep the batch full. next returns false when no jobs are
// left; finish is called with each job once it is done.
func (e *Evaluator) run(ctx context.Context, tr *tracker, next func() (job, bool), finish func(job)) error {
	caches := e.slots()
	active := make([]job, len(caches))
	steps := make([]model.Step, 0, len(caches))
	owner := make([]int, 0, len(caches))
	chunk := e.chunk()
	more := true
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		steps, owner = steps[:0], owner[:0]
		fed := 0
		for i, c := range caches {
			for {
				if active[i] == nil {
					if !more {
						break
					}
					j, ok := next()
					if !ok {
						more = false
						break
					}
					active[i] = j
					c.Reset()
				}
				toks, all, ok := active[i].next(c, chunk)
				if !ok {
					finish(active[i])
					active[i] = nil
					continue
				}
				steps = append(steps, model.Step{Cache: c, Tokens: toks, All: all})
				owner = append(owner, i)
				fed += len(toks)
				break
			}
		}
		if len(steps) == 0 {
			tr.fed(0) // report the jobs that just finished
			return nil
		}
		out, err := e.LM.Forward(steps)
		if err != nil {
			return err
		}
		for k, i := range owner {
			active[i].take(out[k])
		}
		tr.fed(fed)
	}
}

// contScore is the score of one continuation.
type contScore struct {
	logp       float64 // sum of the tokens' log-probabilities
	greedy     bool    // every token was the argmax given its prefix
	lastGreedy bool    // the last token was
}

// choiceJob scores one or more continuations of a shared context: it feeds
// ctx[:len-1] once, then for each continuation branches the cache back to
// that point and feeds ctx[len-1] followed by the continuation's tokens but
// its last, with logits at every position. ctx and each continuation must
// be non-empty, and len(ctx)-1+len(cont) must fit in the context window.
type choiceJob struct {
	ctx    []int
	conts  [][]int
	vocab  int
	scores []contScore
	// first, if set, receives the logits after the whole context (the
	// distribution of the first continuation token).
	first func(row []float32)

	pre    int // context tokens fed before branching
	k, off int // continuation being fed, and how much of it
	n      int // tokens fed by the last scoring step; 0 for a prefix step
	buf    []int
	lp     []float64
	isMax  []bool
}

func newChoice(ctx []int, conts [][]int, vocab int) *choiceJob {
	return &choiceJob{ctx: ctx, conts: conts, vocab: vocab, scores: make([]contScore, len(conts))}
}

func (j *choiceJob) next(c *model.Cache, max int) ([]int, bool, bool) {
	if p := len(j.ctx) - 1; j.pre < p {
		n := min(max, p-j.pre)
		toks := j.ctx[j.pre : j.pre+n]
		j.pre += n
		j.n = 0
		return toks, false, true
	}
	if j.k == len(j.conts) {
		return nil, false, false
	}
	cont := j.conts[j.k]
	if j.off == 0 {
		c.Truncate(len(j.ctx) - 1)
		j.scores[j.k] = contScore{greedy: true}
	}
	// The branch feeds ctx[len-1], cont[0], ..., cont[len-2]: position i
	// predicts cont[i].
	n := min(max, len(cont)-j.off)
	j.buf = j.buf[:0]
	for i := j.off; i < j.off+n; i++ {
		if i == 0 {
			j.buf = append(j.buf, j.ctx[len(j.ctx)-1])
		} else {
			j.buf = append(j.buf, cont[i-1])
		}
	}
	j.n = n
	return j.buf, true, true
}

func (j *choiceJob) take(logits []float32) {
	if j.n == 0 {
		return
	}
	V, n, cont := j.vocab, j.n, j.conts[j.k]
	if j.k == 0 && j.off == 0 && j.first != nil {
		j.first(logits[:V])
	}
	if cap(j.lp) < n {
		j.lp, j.isMax = make([]float64, n), make([]bool, n)
	}
	lp, isMax := j.lp[:n], j.isMax[:n]
	kernels.Parallel(n, 1, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			lp[r], isMax[r] = logProb(logits[r*V:(r+1)*V], cont[j.off+r])
		}
	})
	s := &j.scores[j.k]
	for r := range n {
		s.logp += lp[r]
		s.greedy = s.greedy && isMax[r]
		if j.off+r == len(cont)-1 {
			s.lastGreedy = isMax[r]
		}
	}
	j.off += n
	if j.off == len(cont) {
		j.k++
		j.off = 0
	}
}

// longest returns the length of the longest sequence.
func longest(seqs [][]int) int {
	n := 0
	for _, s := range seqs {
		n = max(n, len(s))
	}
	return n
}

// fitContext drops tokens from the front of ctx so that the fed sequence,
// ctx plus a continuation of cont tokens less its last, fits in nctx
// positions. It reports false if even a one-token context does not fit.
func fitContext(ctx []int, cont, nctx int) ([]int, bool) {
	room := nctx + 1 - cont // context tokens that fit
	if room < 1 || len(ctx) == 0 || cont == 0 {
		return nil, false
	}
	if len(ctx) > room {
		ctx = ctx[len(ctx)-room:]
	}
	return ctx, true
}
