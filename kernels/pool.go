package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool runs the pieces of one kernel call on a fixed set of
// goroutines, so that a forward pass neither starts a goroutine per matrix
// nor allocates per call: a call's bookkeeping comes from a sync.Pool and
// its pieces travel to the workers by value.
//
// Work is always split over outputs, never over a sum, so results do not
// depend on the thread count.

// task is one kernel call's work over an index range.
type task interface{ run(lo, hi int) }

// funcTask adapts a function to a task.
type funcTask func(lo, hi int)

func (f funcTask) run(lo, hi int) { f(lo, hi) }

type call struct {
	t       task
	pending atomic.Int32
	done    chan struct{}
}

type piece struct {
	c      *call
	lo, hi int
}

var (
	poolThreads atomic.Int32
	poolOnce    sync.Once
	poolPieces  chan piece
	calls       = sync.Pool{New: func() any { return &call{done: make(chan struct{}, 1)} }}
)

func init() { poolThreads.Store(int32(runtime.GOMAXPROCS(0))) }

// SetThreads sets how many threads the kernels split their work across.
// n <= 0 means GOMAXPROCS.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	poolThreads.Store(int32(n))
}

// Threads reports how many threads the kernels use.
func Threads() int { return int(poolThreads.Load()) }

// spinFor is how long a worker that has just finished a piece keeps
// looking for the next one before it blocks. A decode step makes dozens of
// kernel calls a few microseconds apart, and waking a blocked goroutine
// costs about as much as a small call itself.
const spinFor = 50 * time.Microsecond

// spinners counts the workers spinning; no more than Threads()-1 may (and
// fewer than GOMAXPROCS), so that spinning never takes a processor from
// the goroutine that hands out work.
var spinners atomic.Int32

func startPool() {
	poolPieces = make(chan piece, 256)
	// More workers than threads do no harm: a call never hands out more
	// pieces than the thread count, and idle workers only block.
	for range max(runtime.NumCPU(), 64) {
		go worker()
	}
}

func worker() {
	for {
		p, ok := nextPiece()
		if !ok {
			return
		}
		p.c.t.run(p.lo, p.hi)
		if p.c.pending.Add(-1) == 0 {
			p.c.done <- struct{}{}
		}
	}
}

// nextPiece waits for a piece of work, spinning briefly first if few
// enough others are.
func nextPiece() (piece, bool) {
	if n := int(spinners.Add(1)); n < Threads() && n < runtime.GOMAXPROCS(0) {
		deadline := time.Now().Add(spinFor)
		for i := 0; ; i++ {
			select {
			case p, ok := <-poolPieces:
				spinners.Add(-1)
				return p, ok
			default:
			}
			if i%64 == 63 && time.Now().After(deadline) {
				break
			}
		}
	}
	spinners.Add(-1)
	p, ok := <-poolPieces
	return p, ok
}

// Parallel calls fn over [0, n) split into at most Threads() contiguous
// ranges whose bounds are multiples of grain (except the last), and waits
// for all of them. The calling goroutine runs the first range itself.
func Parallel(n, grain int, fn func(lo, hi int)) {
	parallel(n, grain, funcTask(fn))
}

// parallel is Parallel for a task, which kernels take from a sync.Pool so
// that the call allocates nothing.
func parallel(n, grain int, t task) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	parts := min(Threads(), (n+grain-1)/grain)
	if parts <= 1 {
		t.run(0, n)
		return
	}
	chunk := ((n+parts-1)/parts + grain - 1) / grain * grain
	parts = (n + chunk - 1) / chunk
	if parts <= 1 {
		t.run(0, n)
		return
	}
	poolOnce.Do(startPool)
	c := calls.Get().(*call)
	c.t = t
	c.pending.Store(int32(parts))
	for lo := chunk; lo < n; lo += chunk {
		poolPieces <- piece{c: c, lo: lo, hi: min(lo+chunk, n)}
	}
	t.run(0, chunk)
	if c.pending.Add(-1) != 0 {
		// Blocking, not spinning: a worker readied by the send above may
		// be waiting for this goroutine's processor.
		<-c.done
	}
	c.t = nil
	calls.Put(c)
}

// taskPool recycles the argument structs of kernel calls.
type taskPool[T any] struct{ p sync.Pool }

func (tp *taskPool[T]) get() *T {
	if v := tp.p.Get(); v != nil {
		return v.(*T)
	}
	return new(T)
}

func (tp *taskPool[T]) put(t *T) {
	var zero T
	*t = zero
	tp.p.Put(t)
}
