package kernels

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"unsafe"
)

// An impl is one implementation of the kernels: "generic" (plain Go, on
// every machine) or a SIMD one chosen at run time from what the CPU
// supports. The SIMD functions all take lengths that are multiples of the
// lane count (see internal/asmgen); the Go wrappers do the remainders.
type impl struct {
	name  string
	simd  bool
	lanes int

	axpy [4]func(y, x *float32, w unsafe.Pointer, ldw, k, n int, s *float32, lds int)
	dot  [4]func(out, x *float32, w unsafe.Pointer, ldw, k, rows int, s *float32, lds int)
	cvt  [4]func(dst *float32, src unsafe.Pointer, n int) // F16, BF16
	// dotQ8Q8 is the q8_0 integer dot product of quantized rows of x with
	// rows of weights (see q8.go and internal/asmgen); nil in the generic
	// implementation.
	// dotQ8Q8Tile is dotQ8Q8 for q8TileMX rows of x at once (nil where
	// there is none).
	dotQ8Q8, dotQ8Q8Tile func(out *float32, ldo int, x unsafe.Pointer, ldx int, w unsafe.Pointer, ldw, k, rows int, s *float32, lds int)
	q8TileMX             int
	// quantQ8 quantizes blocks of 32 inputs for dotQ8Q8 (quantizeRow).
	quantQ8 func(rec unsafe.Pointer, stride int, x *float32, blocks int)
	// prefetch asks for n bytes (a multiple of 256) to be brought into
	// the cache (see Prefetch); nil where there is no such instruction.
	prefetch func(p uintptr, n int)

	// dotTile is the register-tiled MatMulT kernel for many rows of x, by
	// weight type (q8_0 weights are converted first: nil entry): tileMR
	// rows of x against tiles runs of tileNR rows of w, asking for the
	// cache line at pf, then pf+pfs, ..., once per lane-count of k per
	// tile.
	dotTile        [4]func(out *float32, ldo int, x *float32, ldx int, w unsafe.Pointer, ldw, k, tiles int, pf unsafe.Pointer, pfs int)
	tileMR, tileNR int
	// dotTileEdge is dotTile for tileEdgeMR (< tileMR) rows of x, for the
	// last rows of a batch; nil entries (tileEdgeMR 0) where there is none.
	dotTileEdge    [4]func(out *float32, ldo int, x *float32, ldx int, w unsafe.Pointer, ldw, k, tiles int, pf unsafe.Pointer, pfs int)
	tileEdgeMR     int
	gemm           func(kc int, a *float32, lda int, b *float32, ldb int, c *float32, ldc int, bias *float32)
	gemmMR, gemmNR int
	// pack converts whole panels of one row of weights, by type, into the
	// GEMM's packed layout (q8_0 values without their scales).
	pack   [4]func(dst *float32, src unsafe.Pointer, panels, ldd int)
	gemmKC int
	// gemmQ8 is gemm for q8_0 weights: b holds the values as float32 and
	// sp their scales, max(1, gemmNR/32) per k.
	gemmQ8 func(kc int, a *float32, lda int, b, sp, c *float32, ldc int, bias *float32)
	// gemmDirect is gemm reading whole panels of weights in place, by
	// type (nil for q8_0), for batches too small to pay for packing.
	gemmDirect [4]func(kc int, a *float32, lda int, b unsafe.Pointer, ldb int, c *float32, ldc int, bias *float32)

	gelu       func(out, x *float32, n int)
	geluBack   func(dx, x, dy *float32, n int)
	expSum     func(x *float32, n int, m float32) float32
	max        func(x *float32, n int) float32
	maxNum     func(x *float32, n int) float32 // NaN ignored
	sum        func(x *float32, n int) float32
	sumSqDev   func(x *float32, n int, mean float32) float32
	lnApply    func(out, x, g, b *float32, n int, mean, rstd float32)
	add        func(out, a, b *float32, n int)
	scale      func(x *float32, n int, a float32)
	adamW      func(p, g, m, v *float32, n int, c *[8]float32)
	attnAccum4 func(o, a *float32, n int, v *float32, ldv int, inv float32)
	attnAccum2 func(o, a *float32, n int, v *float32, ldv int, inv float32)
	attnAccum1 func(o, a *float32, n int, v *float32, ldv int, inv float32)

	copyNT  func(dst, src unsafe.Pointer, n int)
	readSum func(src unsafe.Pointer, n int) float32
	fmaLoop func(n int)
	fmaOps  int // float32 operations per fmaLoop iteration
}

var generic = &impl{name: "generic"}

// impls lists the implementations this machine can run, best last.
var impls = append([]*impl{generic}, simdImpls()...)

var current atomic.Pointer[impl]

func active() *impl { return current.Load() }

func init() {
	current.Store(impls[len(impls)-1])
	// GPT2_KERNELS forces an implementation (generic, avx2, avx512), for
	// comparing them or working around a suspected kernel bug.
	if name := os.Getenv("GPT2_KERNELS"); name != "" {
		if err := SetImpl(name); err != nil {
			fmt.Fprintf(os.Stderr, "gpt2: GPT2_KERNELS: %v\n", err)
			os.Exit(2)
		}
	}
}

// Impl names the kernel implementation in use.
func Impl() string { return active().name }

// Impls names the implementations this machine can run, slowest first.
func Impls() []string {
	var names []string
	for _, im := range impls {
		names = append(names, im.name)
	}
	return names
}

// SetImpl switches the kernels to the named implementation. It is meant
// for tests and benchmarks; do not call it while kernels are running.
func SetImpl(name string) error {
	for _, im := range impls {
		if im.name == name {
			current.Store(im)
			return nil
		}
	}
	return fmt.Errorf("kernel implementation %q is not available on this machine (have %s)", name, strings.Join(Impls(), ", "))
}
