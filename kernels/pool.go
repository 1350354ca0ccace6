package kernels

import (
	"runtime"
	"sync"
)

// The worker pool runs the pieces of one kernel call on a fixed set of
// goroutines, so that a forward pass does not start a goroutine per matrix.

type job struct {
	fn     func(lo, hi int)
	lo, hi int
	wg     *sync.WaitGroup
}

var (
	poolMu      sync.Mutex
	poolThreads = runtime.GOMAXPROCS(0)
	poolJobs    chan job
)

// SetThreads sets how many threads the kernels split their work across.
// n <= 0 means GOMAXPROCS.
func SetThreads(n int) {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	poolMu.Lock()
	poolThreads = n
	poolMu.Unlock()
}

// Threads reports how many threads the kernels use.
func Threads() int {
	poolMu.Lock()
	defer poolMu.Unlock()
	return poolThreads
}

func startPool() chan job {
	poolMu.Lock()
	defer poolMu.Unlock()
	if poolJobs == nil {
		poolJobs = make(chan job, 256)
		// More workers than threads do no harm: Parallel never hands out
		// more pieces than the thread count, and idle workers only block.
		for i := 0; i < max(runtime.NumCPU(), 64); i++ {
			go func() {
				for j := range poolJobs {
					j.fn(j.lo, j.hi)
					j.wg.Done()
				}
			}()
		}
	}
	return poolJobs
}

// Parallel calls fn over [0, n) split into at most Threads() contiguous
// ranges whose bounds are multiples of grain (except the last), and waits
// for all of them. The calling goroutine runs the first range itself.
func Parallel(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	parts := min(Threads(), (n+grain-1)/grain)
	if parts <= 1 {
		fn(0, n)
		return
	}
	chunk := ((n+parts-1)/parts + grain - 1) / grain * grain
	jobs := startPool()
	var wg sync.WaitGroup
	for lo := chunk; lo < n; lo += chunk {
		wg.Add(1)
		jobs <- job{fn: fn, lo: lo, hi: min(lo+chunk, n), wg: &wg}
	}
	fn(0, min(chunk, n))
	wg.Wait()
}
