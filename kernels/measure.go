package kernels

import (
	"slices"
	"time"
	"unsafe"
)

// Ceilings of this machine, for judging how close the kernels come.

// copyBufBytes is the size of each of the two copy buffers: four times the
// largest last-level caches of current servers (260 MiB here), so that the
// copy runs from and to memory.
const copyBufBytes = 1 << 30

// MeasureCopyBandwidth returns memory copy bandwidth in GB/s (1e9 bytes),
// counting bytes read plus bytes written, with Threads() threads each
// copying its share of a 1 GiB buffer into another with a vector loop that
// fetches 4 KiB ahead into L2 and stores non-temporally. It warms up once
// and returns the median of five passes. It allocates 2 GiB while it runs.
func MeasureCopyBandwidth() float64 { return MeasureCopyBandwidthSize(copyBufBytes) }

// MeasureCopyBandwidthSize is MeasureCopyBandwidth with buffers of size
// bytes each; below a few times the last-level cache it measures the cache.
func MeasureCopyBandwidthSize(size int) float64 {
	return measureBandwidth(size, true)
}

// MeasureReadBandwidth returns memory read bandwidth in GB/s, with
// Threads() threads each summing its share of a 1 GiB buffer with a vector
// loop that fetches ahead as the copy's does. It warms up once and returns
// the median of five passes. Where the copy moves data without waiting
// for it (streaming stores), a read waits on every line, so on some
// machines a thread reads much less than half of what it copies.
func MeasureReadBandwidth() float64 { return MeasureReadBandwidthSize(copyBufBytes) }

// MeasureReadBandwidthSize is MeasureReadBandwidth with a buffer of size
// bytes.
func MeasureReadBandwidthSize(size int) float64 {
	return measureBandwidth(size, false)
}

// measureBandwidth times threads copying (or summing) their shares of a
// buffer of size bytes: the median of five passes after a warm-up, in GB/s
// of bytes read plus written.
func measureBandwidth(size int, copying bool) float64 {
	best := bestImpl()
	threads := Threads()
	size = max(size, threads*4096)
	// Align to a page so that every vector load and store is aligned.
	page := func() []byte {
		b := make([]byte, size+4096)
		return b[alignOff(b, 4096):][:size]
	}
	s := page()
	for i := range s {
		s[i] = byte(i)
	}
	var d []byte
	if copying {
		d = page()
	}
	per := size / threads / 4096 * 4096
	sums := make([]float32, threads) // keeps the reads from being dead
	pass := func() time.Duration {
		start := time.Now()
		Parallel(threads, 1, func(lo, hi int) {
			for th := lo; th < hi; th++ {
				b := s[th*per : (th+1)*per]
				switch {
				case copying && best.simd:
					best.copyNT(unsafe.Pointer(&d[th*per]), unsafe.Pointer(&b[0]), per)
				case copying:
					copy(d[th*per:(th+1)*per], b)
				case best.simd:
					sums[th] = best.readSum(unsafe.Pointer(&b[0]), per)
				default:
					var sum uint64
					for _, w := range unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), per/8) {
						sum += w
					}
					sums[th] = float32(sum)
				}
			}
		})
		return time.Since(start)
	}
	pass()
	var times []time.Duration
	for range 5 {
		times = append(times, pass())
	}
	moved := per * threads
	if copying {
		moved *= 2
	}
	return float64(moved) / median(times).Seconds() / 1e9
}

// MeasureFMAPeak returns the float32 fused multiply-add throughput in
// GFLOP/s (two operations per lane) of threads threads (0 means Threads())
// running independent chains of vector FMAs, as many chains as hide the
// instruction's latency. It takes about a second: a warm-up and the median
// of five runs.
func MeasureFMAPeak(threads int) float64 {
	if threads <= 0 {
		threads = Threads()
	}
	best := bestImpl()
	if !best.simd {
		return measureFMAGo(threads)
	}
	const iters = 2_000_000 // ~30 ms at 3 GHz
	old := Threads()
	SetThreads(threads)
	defer SetThreads(old)
	run := func() time.Duration {
		start := time.Now()
		Parallel(threads, 1, func(lo, hi int) {
			for range hi - lo {
				best.fmaLoop(iters)
			}
		})
		return time.Since(start)
	}
	run()
	var times []time.Duration
	for range 5 {
		times = append(times, run())
	}
	return float64(threads) * iters * float64(best.fmaOps) / median(times).Seconds() / 1e9
}

// measureFMAGo is the portable stand-in: scalar multiply-adds in eight
// chains, which is what the generic kernels can reach.
func measureFMAGo(threads int) float64 {
	const iters = 20_000_000
	old := Threads()
	SetThreads(threads)
	defer SetThreads(old)
	sink := make([]float32, threads)
	run := func() time.Duration {
		start := time.Now()
		Parallel(threads, 1, func(lo, hi int) {
			for th := lo; th < hi; th++ {
				var a [8]float32
				b, c := float32(0.999), float32(1e-3)
				for range iters {
					for j := range a {
						a[j] = a[j]*b + c
					}
				}
				sink[th] = a[0] + a[7]
			}
		})
		return time.Since(start)
	}
	run()
	var times []time.Duration
	for range 3 {
		times = append(times, run())
	}
	return float64(threads) * iters * 16 / median(times).Seconds() / 1e9
}

func bestImpl() *impl { return impls[len(impls)-1] }

func alignOff(b []byte, a int) int {
	p := uintptr(unsafe.Pointer(&b[0]))
	return int((uintptr(a) - p%uintptr(a)) % uintptr(a))
}

func median(ts []time.Duration) time.Duration {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2]
}
