package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/sample"
	"github.com/gpt2go/gpt2/tokenizer"
)

// The scheduler is the one goroutine that runs the model. Requests become
// jobs, one sequence per choice; sequences join the running batch between
// forward steps, as key/value caches free up, and leave it as soon as they
// finish, fail, or their request is cancelled. Every step feeds each
// running sequence its next token (or the next chunk of its prompt)
// through a single forward pass.

// An event is what the scheduler tells a request's handler: text and
// log-probabilities for one choice, that a choice finished, or that the
// whole job is over.
type event struct {
	choice int
	text   string
	lp     []lpEntry // one per token the event covers, when logprobs were asked for
	finish string    // the choice's finish reason, when it is done
	tokens int       // generated tokens, in the choice's finish event

	done bool      // the job is over: every choice finished
	err  *apiError // the job failed; nothing more follows
}

// lpEntry is one token's log-probability and its most likely alternatives.
type lpEntry struct {
	token   int
	logprob float64
	none    bool // the first prompt token has no log-probability
	top     []sample.TokenLogprob
}

// A job is one request's sequences.
type job struct {
	ctx     context.Context // cancelled when the client leaves; its deadline is --timeout
	req     *completionRequest
	arrived time.Time
	seqs    []*seqState
	next    int  // seqs[next:] still wait for the batch (scheduler only)
	live    int  // seqs not finished (scheduler only)
	over    bool // the handler has had its last event (scheduler only)
	need    int  // sequences that need a cache
	waits   bool // it did not fit in the batch when it came, so it counts against the queue

	mu       sync.Mutex
	events   []event
	notify   chan struct{}
	sawToken bool
}

func newJob(ctx context.Context, req *completionRequest) *job {
	j := &job{ctx: ctx, req: req, arrived: time.Now(), notify: make(chan struct{}, 1)}
	for p, prompt := range req.Prompts {
		for i := range req.N {
			// The server computes the log-probabilities it reports itself
			// (entry), so the sequence need not.
			opts := sample.Options{Params: req.Params, MaxTokens: req.MaxTokens, Stop: req.Stop, SkipLogprobs: true}
			// Choice i of a prompt uses seed+i, as `gpt2 generate
			// --num-samples` does, so each is reproducible on its own.
			opts.Seed = req.Params.Seed + uint64(i)
			j.seqs = append(j.seqs, &seqState{
				job:      j,
				choice:   p*req.N + i,
				prompt:   prompt,
				opts:     opts,
				promptLP: req.Echo && req.Logprobs >= 0,
			})
		}
	}
	j.live = len(j.seqs)
	for _, q := range j.seqs {
		if q.needsModel() {
			j.need++
		}
	}
	return j
}

// send queues events for the handler and wakes it. It never blocks, so a
// slow client cannot hold up the batch.
func (j *job) send(evs ...event) {
	j.mu.Lock()
	j.events = append(j.events, evs...)
	j.mu.Unlock()
	select {
	case j.notify <- struct{}{}:
	default:
	}
}

// wait returns the events sent since the last call, waiting for at least
// one; it returns nil if ctx ends first.
func (j *job) wait(ctx context.Context) []event {
	for {
		j.mu.Lock()
		evs := j.events
		j.events = nil
		j.mu.Unlock()
		if len(evs) > 0 {
			return evs
		}
		select {
		case <-j.notify:
		case <-ctx.Done():
			return nil
		}
	}
}

// firstToken reports whether this is the job's first generated token.
func (j *job) firstToken() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	first := !j.sawToken
	j.sawToken = true
	return first
}

// seqState is one choice being generated.
type seqState struct {
	job      *job
	choice   int
	prompt   []int
	opts     sample.Options
	promptLP bool // echo with logprobs: score every prompt token

	seq       *sample.Sequence
	cache     *model.Cache
	promptLen int       // tokens the model is given: the prompt, or <|endoftext|> alone
	echoLP    []lpEntry // the prompt tokens' entries, gathered during prefill
	finish    string    // why it ended, once it has: a finish reason, or "cancelled", "timeout", "error"
	crash     any       // what advance panicked with
	told      bool      // the handler has had the finish reason
}

// Reasons a sequence ends early, besides the finish reasons.
const (
	endCancelled = "cancelled"
	endTimeout   = "timeout"
	endError     = "error"
	endShutdown  = "shutdown"
)

type scheduler struct {
	m            *model.Model
	tok          *tokenizer.Tokenizer
	vocab        int
	maxBatch     int
	maxQueue     int
	prefillChunk int
	metrics      *metrics

	// stepDelay slows every step down, so tests can catch requests in
	// the middle of their generation.
	stepDelay time.Duration

	mu      sync.Mutex
	queue   []*job       // jobs with sequences not yet in the batch, oldest first
	queued  int          // sequences in queue that need a cache
	waiting int          // jobs in queue that did not fit when they came
	closed  bool         // no new jobs
	held    atomic.Int64 // caches held by running sequences
	wake    chan struct{}
	abort   chan struct{} // closed to end every job at once
	done    chan struct{} // closed when run returns

	// Owned by run.
	running []*seqState
	free    []*model.Cache
	caches  int
	steps   []model.Step
	logits  []float32 // the last step's, reused by the next
}

func newScheduler(m *model.Model, tok *tokenizer.Tokenizer, maxBatch, maxQueue, prefillChunk int, mt *metrics) *scheduler {
	return &scheduler{
		m: m, tok: tok,
		vocab:    min(tok.VocabSize(), m.Config.VocabSize),
		maxBatch: maxBatch, maxQueue: maxQueue, prefillChunk: prefillChunk,
		metrics: mt,
		wake:    make(chan struct{}, 1),
		abort:   make(chan struct{}),
		done:    make(chan struct{}),
	}
}

// errQueueFull and errClosed are submit's refusals.
var (
	errQueueFull = &apiError{Status: http.StatusTooManyRequests, Type: typeRateLimit, Code: ptr("rate_limit_exceeded"),
		Message: "the server is at capacity: too many requests are waiting; retry later"}
	errClosed = &apiError{Status: http.StatusServiceUnavailable, Type: typeServer, Code: ptr("shutting_down"),
		Message: "the server is shutting down"}
)

// submit queues a job, or refuses it when the scheduler is closing or the
// job would have to wait for caches and maxQueue jobs already do. A job
// that fits in the batch is not waiting, though it joins only at the end
// of the step under way.
func (s *scheduler) submit(j *job) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if free := s.maxBatch - int(s.held.Load()) - s.queued; j.need > free {
		if s.waiting >= s.maxQueue {
			return errQueueFull
		}
		j.waits = true
		s.waiting++
	}
	s.queued += j.need
	s.queue = append(s.queue, j)
	s.metrics.queueDepth.Set(float64(s.waiting))
	s.signal()
	return nil
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// drain stops taking jobs and waits until those taken are finished, or
// until ctx ends, when it ends them with an error.
func (s *scheduler) drain(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	s.signal()
	s.mu.Unlock()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		return ctx.Err()
	}
}

// stop ends every job at once and waits for run to return.
func (s *scheduler) stop() {
	s.mu.Lock()
	s.closed = true
	select {
	case <-s.abort:
	default:
		close(s.abort)
	}
	s.mu.Unlock()
	<-s.done
}

// run is the scheduler's loop. It returns once closed with nothing left to
// do, or when stopped.
func (s *scheduler) run() {
	defer close(s.done)
	for {
		select {
		case <-s.abort:
			s.endAll()
			return
		default:
		}
		s.admit()
		if len(s.running) == 0 {
			s.mu.Lock()
			idle := len(s.queue) == 0
			closed := s.closed
			s.mu.Unlock()
			if idle && closed {
				return
			}
			if idle {
				select {
				case <-s.wake:
				case <-s.abort:
				}
			}
			continue
		}
		s.step()
	}
}

// admit moves waiting sequences into the batch while there are caches for
// them, oldest job first, and drops jobs whose request ended while they
// waited.
func (s *scheduler) admit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := s.queue[:0]
	for _, j := range s.queue {
		if err := j.ctx.Err(); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				s.fail(j, timeoutError(j))
			}
			for _, q := range j.seqs[j.next:] {
				s.dequeue(q)
				s.end(q, endReason(err))
			}
			j.next = len(j.seqs)
		}
		for j.next < len(j.seqs) {
			q := j.seqs[j.next]
			if !q.needsModel() {
				j.next++
				s.start(q, nil)
				continue
			}
			c := s.cache()
			if c == nil {
				break
			}
			j.next++
			s.dequeue(q)
			s.start(q, c)
		}
		if j.next < len(j.seqs) {
			keep = append(keep, j)
		} else if j.waits {
			s.waiting--
		}
	}
	clear(s.queue[len(keep):])
	s.queue = keep
	s.metrics.queueDepth.Set(float64(s.waiting))
	s.metrics.batchSize.Set(float64(len(s.running)))
}

// needsModel reports whether q has anything to compute: not when it
// generates nothing and scores nothing.
func (q *seqState) needsModel() bool {
	return q.opts.MaxTokens > 0 || q.promptLP
}

// dequeue counts q out of the queue (s.mu held).
func (s *scheduler) dequeue(q *seqState) {
	if q.needsModel() {
		s.queued--
	}
}

// cache returns a free cache, allocating one while fewer than maxBatch
// exist, or nil.
func (s *scheduler) cache() *model.Cache {
	var c *model.Cache
	switch n := len(s.free); {
	case n > 0:
		c = s.free[n-1]
		s.free = s.free[:n-1]
	case s.caches < s.maxBatch:
		s.caches++
		s.metrics.caches.Set(float64(s.caches))
		c = s.m.NewCache()
	default:
		return nil
	}
	s.held.Add(1)
	return c
}

// release returns a cache to the pool.
func (s *scheduler) release(c *model.Cache) {
	s.free = append(s.free, c)
	s.held.Add(-1)
}

// start sets q going with cache c (nil when it needs no model).
func (s *scheduler) start(q *seqState, c *model.Cache) {
	j := q.job
	req := j.req
	q.promptLen = max(len(q.prompt), 1)
	if c == nil {
		if req.Echo {
			j.send(event{choice: q.choice, text: s.promptText(q.prompt)})
		}
		s.finish(q, sample.FinishLength)
		return
	}
	seq, err := sample.NewSequence(s.m, s.tok, c, q.prompt, q.opts)
	if err != nil {
		// The request was checked; this is a bug, not bad input.
		s.release(c)
		s.fail(j, &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: fmt.Sprintf("start sequence: %v", err)})
		s.end(q, endError)
		return
	}
	q.seq, q.cache = seq, c
	s.metrics.promptTokens.Add(float64(q.promptLen))
	if req.Echo && !q.promptLP {
		j.send(event{choice: q.choice, text: s.promptText(q.prompt)})
	}
	s.running = append(s.running, q)
}

// promptText is the text echoed for a prompt: the text of the ids the
// model is given.
func (s *scheduler) promptText(prompt []int) string {
	if len(prompt) == 0 {
		prompt = []int{tokenizer.EndOfText}
	}
	text, _ := s.tok.Decode(prompt) // ids were checked against the vocabulary
	return text
}

// maxReusedLogitRows bounds the logits buffer the scheduler keeps between
// steps: 64 rows of GPT-2's vocabulary are 13 MB.
const maxReusedLogitRows = 64

// step runs one forward pass over the batch and advances every sequence in
// it.
func (s *scheduler) step() {
	// Sequences of requests that were cancelled or ran out of time leave
	// before the step.
	for _, q := range s.running {
		if err := q.job.ctx.Err(); err != nil && q.finish == "" {
			if errors.Is(err, context.DeadlineExceeded) {
				s.fail(q.job, timeoutError(q.job))
			}
			s.end(q, endReason(err))
		}
	}
	s.sweep()
	if len(s.running) == 0 {
		return
	}

	// Decoding sequences feed one token each; prompts share a budget of
	// prefillChunk tokens per step, oldest first, so that a long prompt
	// does not stall everyone's next token.
	budget := s.prefillChunk
	steps := s.steps[:0]
	batch := make([]*seqState, 0, len(s.running))
	for _, q := range s.running {
		in := q.seq.NextInput()
		prefill := q.cache.Len < q.promptLen
		if prefill {
			if budget <= 0 {
				continue
			}
			in = in[:min(len(in), budget)]
			budget -= len(in)
		}
		steps = append(steps, model.Step{Cache: q.cache, Tokens: in, All: prefill && q.promptLP})
		batch = append(batch, q)
	}
	s.steps = steps

	// The logits go into one buffer the scheduler keeps (each step's are
	// used up, sampled and scored, before the next step), unless an
	// echoed prompt's asks for so many rows that keeping them would pin
	// memory.
	rows := 0
	for _, st := range steps {
		if st.All {
			rows += len(st.Tokens)
		} else {
			rows++
		}
	}
	buf := s.logits
	if rows <= maxReusedLogitRows {
		if n := rows * s.m.Config.VocabSize; cap(s.logits) < n {
			s.logits = make([]float32, n)
		}
		buf = s.logits
	}
	logits, err := s.m.ForwardInto(buf, steps)
	if err != nil {
		e := &apiError{Status: http.StatusInternalServerError, Type: typeServer, Message: fmt.Sprintf("forward pass: %v", err)}
		for _, q := range batch {
			s.fail(q.job, e)
			s.end(q, endError)
		}
		s.sweep()
		return
	}
	s.metrics.steps.Inc()
	if s.stepDelay > 0 {
		time.Sleep(s.stepDelay)
	}
	// Sequences are independent, so their sampling (and scoring) can share
	// the cores.
	kernels.Parallel(len(batch), 1, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s.advanceSafely(batch[i], len(steps[i].Tokens), logits[i])
		}
	})
	for _, q := range batch {
		switch {
		case q.crash != nil:
			s.fail(q.job, &apiError{Status: http.StatusInternalServerError, Type: typeServer,
				Message: fmt.Sprintf("internal error generating choice %d: %v", q.choice, q.crash)})
			s.end(q, endError)
		case q.finish != "":
			s.finish(q, q.finish)
		}
	}
	s.sweep()
}

// advanceSafely is advance, with a panic (a bug) failing q's request
// rather than the whole server.
func (s *scheduler) advanceSafely(q *seqState, n int, logits []float32) {
	defer func() {
		if r := recover(); r != nil {
			q.crash = r
		}
	}()
	s.advance(q, n, logits)
}

// advance takes in the logits of q's last step (n new positions; logits
// for each of them with All, else for the last) and draws its next token
// once its prompt is in. It runs concurrently for different sequences, so
// it touches only q and its job.
func (s *scheduler) advance(q *seqState, n int, logits []float32) {
	V := s.m.Config.VocabSize
	k := q.job.req.Logprobs
	if q.promptLP {
		prompt := q.seq.Prompt()
		start := q.cache.Len - n
		if start == 0 {
			q.echoLP = append(q.echoLP, lpEntry{token: prompt[0], none: true})
		}
		for i := range n {
			if next := start + i + 1; next < q.promptLen {
				q.echoLP = append(q.echoLP, s.entry(logits[i*V:(i+1)*V], prompt[next], k))
			}
		}
	}
	if q.cache.Len < q.promptLen {
		return // more prompt to feed
	}
	j := q.job
	if q.promptLP && q.echoLP != nil {
		ev := event{choice: q.choice, text: s.promptText(q.prompt), lp: q.echoLP}
		q.echoLP = nil
		if q.opts.MaxTokens == 0 {
			q.finish = sample.FinishLength
			ev.finish, q.told = q.finish, true
		}
		j.send(ev)
	}
	if q.finish != "" {
		return
	}
	last := logits[len(logits)-V:]
	tok, text, done := q.seq.Accept(last)
	if j.firstToken() {
		s.metrics.ttft.Observe(time.Since(j.arrived).Seconds())
	}
	s.metrics.generatedTokens.Inc()
	ev := event{choice: q.choice, text: text}
	if k >= 0 {
		ev.lp = []lpEntry{s.entry(last, tok, k)}
	}
	if done {
		// The last token's event says it is the last.
		q.finish = q.seq.FinishReason()
		ev.finish, ev.tokens, q.told = q.finish, len(q.seq.Generated()), true
	}
	j.send(ev)
}

// entry scores token id under logits, with the k most likely alternatives.
func (s *scheduler) entry(logits []float32, id, k int) lpEntry {
	lp := sample.LogSoftmax(logits[:s.vocab])
	return lpEntry{token: id, logprob: lp[id], top: sample.TopK(lp, k)}
}

// finish ends q, telling its handler unless its last event did.
func (s *scheduler) finish(q *seqState, reason string) {
	if !q.told {
		tokens := 0
		if q.seq != nil {
			tokens = len(q.seq.Generated())
		}
		q.job.send(event{choice: q.choice, finish: reason, tokens: tokens})
	}
	s.end(q, reason)
}

// end takes q out of the batch (once sweep runs) and returns its cache. When
// the last of a job's sequences ends, the job is over.
func (s *scheduler) end(q *seqState, reason string) {
	q.finish = reason
	if q.cache != nil {
		s.release(q.cache)
		q.cache = nil
	}
	s.metrics.finished.WithLabelValues(reason).Inc()
	j := q.job
	j.live--
	if j.live == 0 && !j.over {
		j.over = true
		j.send(event{done: true})
	}
}

// fail ends job j with an error, once; its sequences must still be ended.
func (s *scheduler) fail(j *job, e *apiError) {
	if !j.over {
		j.over = true
		j.send(event{err: e})
	}
}

// sweep drops the sequences that ended from the batch.
func (s *scheduler) sweep() {
	s.running = slices.DeleteFunc(s.running, func(q *seqState) bool { return q.finish != "" })
	s.metrics.batchSize.Set(float64(len(s.running)))
}

// endAll ends every job, running or waiting, when the scheduler is
// stopped.
func (s *scheduler) endAll() {
	for _, q := range s.running {
		if q.finish == "" {
			s.fail(q.job, errClosed)
			s.end(q, endShutdown)
		}
	}
	s.sweep()
	s.mu.Lock()
	for _, j := range s.queue {
		s.fail(j, errClosed)
		for _, q := range j.seqs[j.next:] {
			s.end(q, endShutdown)
		}
	}
	s.queue = nil
	s.queued, s.waiting = 0, 0
	s.metrics.queueDepth.Set(0)
	s.mu.Unlock()
}

func endReason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return endTimeout
	}
	return endCancelled
}

func timeoutError(j *job) *apiError {
	return &apiError{Status: http.StatusGatewayTimeout, Type: typeTimeout, Code: ptr("timeout"),
		Message: fmt.Sprintf("the request ran for longer than the server's time limit (%s)", time.Since(j.arrived).Round(time.Millisecond))}
}
