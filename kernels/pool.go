package kernels

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The worker pool runs the pieces of one kernel call on a fixed set of
// goroutines, so that a forward pass neither starts a goroutine per matrix
// nor allocates per call: a call's bookkeeping comes from a sync.Pool.
//
// A call's pieces are claimed, not assigned: the calling goroutine and any
// worker take the next unclaimed piece with one compare-and-swap, so a
// piece never waits for a particular goroutine to be scheduled. Workers
// that have just finished spin for a while looking at the latest call
// (offer) before they block; a blocked worker is woken through a channel
// only when too few are spinning. The caller runs whatever nobody else
// has claimed, so no piece is ever stranded.
//
// Work is always split over outputs, never over a sum, so results do not
// depend on the thread count or on who runs which piece.

// task is one kernel call's work over an index range.
type task interface{ run(lo, hi int) }

// funcTask adapts a function to a task.
type funcTask func(lo, hi int)

func (f funcTask) run(lo, hi int) { f(lo, hi) }

type call struct {
	t        task
	n, chunk int
	// state packs the generation of this reuse of the call (high 32
	// bits), its number of pieces (16 bits) and how many are claimed (low
	// 16 bits), so that a claim is one compare-and-swap and a worker
	// holding a call from an earlier generation can never claim a piece
	// it did not see.
	state   atomic.Uint64
	pending atomic.Int32 // pieces not yet finished
	done    chan struct{}
}

const maxPieces = 1<<16 - 1

// unpackState unpacks a call's state: how many pieces it has, and the next
// one to claim.
func unpackState(s uint64) (parts, next int) { return int(s >> 16 & 0xffff), int(s & 0xffff) }

// claim takes the next unclaimed piece of c, if any.
func (c *call) claim() (lo, hi int, ok bool) {
	for {
		s := c.state.Load()
		parts, next := unpackState(s)
		if next >= parts {
			return 0, 0, false
		}
		if c.state.CompareAndSwap(s, s+1) {
			lo = next * c.chunk
			return lo, min(lo+c.chunk, c.n), true
		}
	}
}

// work runs pieces of c until none is left unclaimed. It reports whether
// it finished the call's last piece.
func (c *call) work() (last bool) {
	for {
		lo, hi, ok := c.claim()
		if !ok {
			return last
		}
		c.t.run(lo, hi)
		last = c.pending.Add(-1) == 0
	}
}

var (
	poolThreads atomic.Int32
	poolOnce    sync.Once
	offer       atomic.Pointer[call] // the latest call with pieces to claim
	wake        chan *call           // to blocked workers
	spinners    atomic.Int32         // workers spinning on offer
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

// spinFor is how long a worker that has just finished keeps looking for
// the next call before it blocks, and how long a caller spins waiting for
// its pieces before it blocks. Waking a blocked goroutine on another
// (virtual) CPU took 143 us at the median here, with a tail of
// milliseconds: more than a decode step's matrix-vector product and about
// as long as threads finish apart at the end of a prompt's products. At
// 50 us a 512-token prefill woke its worker 76 times, losing ~22 ms of
// ~400; at 5 ms it wakes none, and prefill ran 4% faster and decode 6%
// (in-process alternation, 30-40 rounds). The cost is at most 5 ms of
// one spinning core after the last call of a burst.
const spinFor = 5 * time.Millisecond

func startPool() {
	wake = make(chan *call, 256)
	// More workers than threads do no harm: idle ones stay blocked.
	for range max(runtime.NumCPU(), 64) {
		go worker()
	}
}

func worker() {
	for c := range wake {
		finish(c, c.work())
		spin()
	}
}

// finish tells c's caller, which is waiting for it, that the last piece
// is done.
func finish(c *call, last bool) {
	if last {
		c.done <- struct{}{}
	}
}

// spin runs offered calls until none has come for spinFor, if fewer than
// Threads()-1 workers (and GOMAXPROCS-1) are spinning already: more would
// take processors from the goroutines that hand out work.
func spin() {
	n := int(spinners.Add(1))
	defer spinners.Add(-1)
	if n >= Threads() || n >= runtime.GOMAXPROCS(0) {
		return
	}
	deadline := time.Now().Add(spinFor)
	for i := 0; ; i++ {
		if c := offer.Load(); c != nil {
			if c.peek() {
				finish(c, c.work())
				deadline = time.Now().Add(spinFor)
				continue
			}
		}
		prefetchIdle()
		if i%64 == 63 && time.Now().After(deadline) {
			return
		}
	}
}

// peek reports whether c has a piece left to claim, without claiming it.
func (c *call) peek() bool {
	parts, next := unpackState(c.state.Load())
	return next < parts
}

// Parallel calls fn over [0, n) split into at most Threads() contiguous
// ranges whose bounds are multiples of grain (except the last), and waits
// for all of them. The calling goroutine runs some of the ranges itself.
func Parallel(n, grain int, fn func(lo, hi int)) {
	parallel(n, grain, funcTask(fn))
}

// parallel is Parallel for a task, which kernels take from a sync.Pool so
// that the call allocates nothing.
func parallel(n, grain int, t task) { parallelPieces(n, grain, 1, t) }

// parallelPieces is parallel with up to perThread pieces per thread, for
// long compute-bound calls: whoever is free claims the next piece, so a
// thread slowed by others on its core (common on shared machines) does
// less of the work instead of holding everyone up at the end.
func parallelPieces(n, grain, perThread int, t task) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	parts := min(Threads()*perThread, (n+grain-1)/grain, maxPieces)
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
	c.t, c.n, c.chunk = t, n, chunk
	c.pending.Store(int32(parts))
	gen := c.state.Load()>>32 + 1
	c.state.Store(gen<<32 | uint64(parts)<<16)
	offer.Store(c)
	// Wake blocked workers for the pieces the spinning ones will not take.
	for range min(parts, Threads()) - 1 - int(spinners.Load()) {
		select {
		case wake <- c:
		default:
		}
	}
	if !c.work() {
		// Spin while the other pieces finish (they are running: every
		// piece is claimed), then collect the finisher's signal.
		deadline := time.Now().Add(spinFor)
		for i := 0; c.pending.Load() != 0; i++ {
			prefetchIdle()
			if i%64 == 63 && time.Now().After(deadline) {
				break
			}
		}
		<-c.done
	}
	offer.CompareAndSwap(c, nil)
	// A new generation with no pieces: a worker still holding c can
	// claim nothing until its next use.
	c.state.Store((gen + 1) << 32)
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

// Fetching ahead while idle. Decoding a token reads each weight matrix
// once, in a known order, with a barrier after each: while one thread
// finishes a call's last piece, or the caller does the small serial work
// between calls, the other would only spin. Given the next matrix, idle
// threads fetch its first bytes into the cache instead, a step at a time,
// so that memory stays busy across the barriers.
var ahead struct {
	// base is the address to fetch from, held as a number: the fetch
	// neither keeps the memory alive nor needs it to be (a prefetch never
	// faults), and a thread that pairs an old base with new offsets only
	// fetches lines nobody wants.
	base atomic.Uintptr
	n    atomic.Int64 // bytes to fetch from base
	next atomic.Int64 // offset of the next step
}

const (
	aheadStep = 4096 // bytes per step: short, so a new call is not kept waiting
	// aheadBudget is how much of a matrix to fetch: the whole of each of
	// GPT-2 124M's block matrices in q8_0 and a good part in f32, about
	// what the cores' L2 hold. Measured on the 124M decode step (2
	// threads): 1 MiB gave half the gain of 4 MiB, 16 and 64 MiB less.
	aheadBudget = 4 << 20
	// prefetchRows is the most rows of x for which Prefetch fetches.
	prefetchRows = 8
)

// Prefetch tells idle threads that w is the next matrix to be read, by n
// rows of x, so that they fetch its first bytes while they wait; it
// returns at once. Callers that read weights once per call (decoding)
// name each matrix before the call ahead of it. It is a hint: it does
// nothing without a SIMD implementation, nor for more than prefetchRows
// rows, whose products are bound by arithmetic and keep their own blocks
// in the caches that fetching ahead would crowd.
func Prefetch(w *Mat, n int) {
	var p unsafe.Pointer
	var size int
	switch {
	case n > prefetchRows:
	case len(w.F32) > 0:
		p, size = unsafe.Pointer(&w.F32[0]), 4*len(w.F32)
	case len(w.U16) > 0:
		p, size = unsafe.Pointer(&w.U16[0]), 2*len(w.U16)
	case len(w.Q8) > 0:
		p, size = unsafe.Pointer(&w.Q8[0]), len(w.Q8)
	}
	ahead.base.Store(0)
	if p == nil {
		return
	}
	ahead.next.Store(0)
	ahead.n.Store(int64(min(size, aheadBudget) &^ (aheadStep - 1)))
	ahead.base.Store(uintptr(p))
}

// prefetchIdle takes the next step of the fetch that Prefetch asked for,
// if any is left.
func prefetchIdle() {
	p := ahead.base.Load()
	if p == 0 {
		return
	}
	n := ahead.n.Load()
	if ahead.next.Load() >= n {
		return // done: no read-modify-write on a line both threads spin over
	}
	off := ahead.next.Add(aheadStep) - aheadStep
	if off >= n {
		return
	}
	if im := active(); im.prefetch != nil {
		im.prefetch(p+uintptr(off), aheadStep)
	}
}
