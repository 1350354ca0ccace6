// Command asmgen writes the amd64 assembly of package kernels
// (simd_amd64.s) and its Go declarations (simd_decl_amd64.go).
//
// Every kernel is generated twice from one description: once for AVX2+FMA
// (8 lanes, 16 vector registers) and once for AVX-512 (16 lanes, 32
// registers). Generating them keeps the two in step and keeps the weight
// types (f32, f16, bf16, q8_0) of the matrix kernels from being four
// hand-copied loops. The build does not need this program: its output is
// committed. Run it with `go generate ./kernels`.
//
// The numerical contract the generated code keeps (see ../../kernels.go):
//   - axpy and gemm: each output is its starting value (the bias), then
//     one fused multiply-add per input element in input order, so a row's
//     result does not depend on how many rows are computed together; for
//     q8_0 (axpy, gemmQ8) each is fma(x*scale, q, acc).
//   - dot and dotTile: one accumulator lane per input index modulo the
//     lane count, then the same fixed reduction tree (reduce below).
//
// ABI0 functions; arguments are read from the frame. They clobber R14 and
// R15 and X15 where they need them, which the ABI wrappers restore.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"log"
	"math"
	"os"
	"slices"
	"strings"
)

var (
	asm  bytes.Buffer
	decl bytes.Buffer
)

func emit(format string, args ...any) { fmt.Fprintf(&asm, "\t"+format+"\n", args...) }
func label(l string)                  { fmt.Fprintf(&asm, "%s:\n", l) }

// isa describes one vector instruction set.
type isa struct {
	name  string // function-name suffix
	v     string // vector register prefix
	lanes int
}

var (
	avx2   = isa{"AVX2", "Y", 8}
	avx512 = isa{"AVX512", "Z", 16}
)

func (s isa) r(i int) string { return fmt.Sprintf("%s%d", s.v, i) }
func (s isa) vbytes() int    { return 4 * s.lanes }

// x names the 128-bit view of vector register i.
func x(i int) string { return fmt.Sprintf("X%d", i) }

// dtype is a weight storage type.
type dtype struct {
	name string
	size int // bytes per element
}

var (
	f32  = dtype{"F32", 4}
	f16  = dtype{"F16", 2}
	bf16 = dtype{"BF16", 2}
	q8   = dtype{"Q8", 1}
)

// param is one argument or result of a generated function.
type param struct {
	name, gotype string
	size, off    int
}

func p(name, gotype string) param { return param{name: name, gotype: gotype, size: 8} }
func f(name string) param         { return param{name: name, gotype: "float32", size: 4} }

type frame map[string]param

// text starts a function: its TEXT line, and its declaration in Go.
func text(name, doc string, args []param, rets ...param) frame {
	fr := frame{}
	off := 0
	for i := range args {
		off = (off + args[i].size - 1) / args[i].size * args[i].size
		args[i].off = off
		off += args[i].size
		fr[args[i].name] = args[i]
	}
	if len(rets) > 0 {
		off = (off + 7) / 8 * 8
	}
	for i := range rets {
		rets[i].off = off
		off += rets[i].size
		fr[rets[i].name] = rets[i]
	}
	fmt.Fprintf(&asm, "\n// func %s\nTEXT ·%s(SB), NOSPLIT, $0-%d\n", name, name, off)

	var ps, rs []string
	for _, a := range args {
		ps = append(ps, a.name+" "+a.gotype)
	}
	for _, r := range rets {
		rs = append(rs, r.name+" "+r.gotype)
	}
	ret := ""
	if len(rs) > 0 {
		ret = " (" + strings.Join(rs, ", ") + ")"
	}
	if doc != "" {
		fmt.Fprintf(&decl, "\n// %s\n//\n//go:noescape\nfunc %s(%s)%s\n", doc, name, strings.Join(ps, ", "), ret)
	} else {
		fmt.Fprintf(&decl, "\n//go:noescape\nfunc %s(%s)%s\n", name, strings.Join(ps, ", "), ret)
	}
	return fr
}

// arg loads an integer or pointer argument into a register.
func (fr frame) arg(name, reg string) {
	a := fr[name]
	emit("MOVQ %s+%d(FP), %s", name, a.off, reg)
}

// mem is the memory operand of a float32 argument.
func (fr frame) mem(name string) string {
	return fmt.Sprintf("%s+%d(FP)", name, fr[name].off)
}

func ret() {
	emit("VZEROUPPER")
	emit("RET")
}

// loadW loads s.lanes weights of type dt (f32, f16 or bf16: q8_0 kernels
// do their own) at addr into vector register dst as float32.
func loadW(s isa, dt dtype, addr, dst string) {
	switch dt {
	case f32:
		emit("VMOVUPS %s, %s", addr, dst)
	case f16:
		emit("VCVTPH2PS %s, %s", addr, dst)
	case bf16:
		emit("VPMOVZXWD %s, %s", addr, dst)
		emit("VPSLLD $16, %s, %s", dst, dst)
	default:
		panic("loadW: " + dt.name)
	}
}

// loadW1 loads one weight (f32, f16 or bf16) at addr into lane 0 of X
// register dst. zero is an X register holding zero, used to place a bf16
// value in the high half of a float32.
func loadW1(dt dtype, addr string, dst, zero int) {
	switch dt {
	case f32:
		emit("VMOVSS %s, %s", addr, x(dst))
	case f16:
		emit("VPINSRW $0, %s, %s, %s", addr, x(zero), x(dst))
		emit("VCVTPH2PS %s, %s", x(dst), x(dst))
	case bf16:
		emit("VPINSRW $1, %s, %s, %s", addr, x(zero), x(dst))
	default:
		panic("loadW1: " + dt.name)
	}
}

// gemvRows is how many rows of w one axpy call streams (kernels.gemvRows).
const gemvRows = 8

// q8TileMX is how many rows of x the AVX-512 q8_0 integer tile kernel
// takes at once (four rows of w each).
const q8TileMX = 3

// reduce sums the lanes of vector register acc into lane 0 of X(acc), by a
// fixed tree, using register tmp. Every kernel that promises the lane-dot
// order (dot, dotTile, sums) reduces with this sequence.
func reduce(s isa, acc, tmp int) {
	reduceOp(s, acc, tmp, "VADDPS", "VADDSS")
}

func reduceOp(s isa, acc, tmp int, op, opss string) {
	if s.lanes == 16 {
		emit("VEXTRACTF32X8 $1, Z%d, Y%d", acc, tmp)
		emit("%s Y%d, Y%d, Y%d", op, tmp, acc, acc)
		emit("VEXTRACTF32X4 $1, Y%d, X%d", acc, tmp)
	} else {
		emit("VEXTRACTF128 $1, Y%d, X%d", acc, tmp)
	}
	emit("%s X%d, X%d, X%d", op, tmp, acc, acc)
	emit("VPERMILPS $0x4e, X%d, X%d", acc, tmp)
	emit("%s X%d, X%d, X%d", op, tmp, acc, acc)
	emit("VPERMILPS $0xb1, X%d, X%d", acc, tmp)
	emit("%s X%d, X%d, X%d", opss, tmp, acc, acc)
}

// butterfly sums the lanes of up to s.lanes accumulators at once, pairing
// lanes exactly as reduce does (i with i+8, then i+4, then i^2, then i^1),
// so each sum is bit-identical to reduce's, at about a third of the cost.
// Missing inputs read register zr, which must hold zero; t1 and t2 are
// temporaries. The accumulators are overwritten; the result is in
// accs[0], the sum of accs[k] in lane lane[k].
func butterfly(s isa, accs []int, zr, t1, t2 int) (lane []int) {
	n := s.lanes
	in := make([]int, n)
	for k := range in {
		in[k] = zr
		if k < len(accs) {
			in[k] = accs[k]
		}
	}
	R := s.r
	var v []int
	if n == 16 {
		// Level 1: (a_j, a_j+8) -> [a_j lo+hi, a_j+8 lo+hi].
		for j := 0; j < 8; j++ {
			a, b := in[j], in[j+8]
			emit("VSHUFF32X4 $0x44, %s, %s, %s", R(b), R(a), R(t1))
			emit("VSHUFF32X4 $0xee, %s, %s, %s", R(b), R(a), R(t2))
			in[j] = pick(a, b, zr)
			emit("VADDPS %s, %s, %s", R(t2), R(t1), R(in[j]))
		}
		// Level 2: (b_j, b_j+4) -> 128-bit blocks [a_j, a_j+8, a_j+4, a_j+12].
		for j := 0; j < 4; j++ {
			a, b := in[j], in[j+4]
			emit("VSHUFF32X4 $0x88, %s, %s, %s", R(b), R(a), R(t1))
			emit("VSHUFF32X4 $0xdd, %s, %s, %s", R(b), R(a), R(t2))
			in[j] = pick(a, b, zr)
			emit("VADDPS %s, %s, %s", R(t2), R(t1), R(in[j]))
		}
		v = in[:4]
	} else {
		// Level 1: (a_j, a_j+4) -> 128-bit blocks [a_j, a_j+4].
		for j := 0; j < 4; j++ {
			a, b := in[j], in[j+4]
			emit("VPERM2F128 $0x20, %s, %s, %s", R(b), R(a), R(t1))
			emit("VPERM2F128 $0x31, %s, %s, %s", R(b), R(a), R(t2))
			in[j] = pick(a, b, zr)
			emit("VADDPS %s, %s, %s", R(t2), R(t1), R(in[j]))
		}
		v = in[:4]
	}
	// Then, within each 128-bit block: (c_j, c_j+2) by 64-bit halves, and
	// (d_0, d_1) by lanes.
	for j := 0; j < 2; j++ {
		a, b := v[j], v[j+2]
		emit("VUNPCKLPD %s, %s, %s", R(b), R(a), R(t1))
		emit("VUNPCKHPD %s, %s, %s", R(b), R(a), R(t2))
		v[j] = pick(a, b, zr)
		emit("VADDPS %s, %s, %s", R(t2), R(t1), R(v[j]))
	}
	emit("VSHUFPS $0x88, %s, %s, %s", R(v[1]), R(v[0]), R(t1))
	emit("VSHUFPS $0xdd, %s, %s, %s", R(v[1]), R(v[0]), R(t2))
	emit("VADDPS %s, %s, %s", R(t2), R(t1), R(accs[0]))
	// Lane 4k+m holds input [0,2,1,3][m] + offset[k].
	offset := []int{0, 8, 4, 12}
	if n == 8 {
		offset = []int{0, 4}
	}
	lane = make([]int, len(accs))
	for k, off := range offset {
		for m, j := range []int{0, 2, 1, 3} {
			if idx := j + off; idx < len(accs) {
				lane[idx] = 4*k + m
			}
		}
	}
	return lane
}

// pick returns the register to hold the sum of a pair: a, unless a is the
// zero register, then b (which is not, or both are and the sum is zero).
func pick(a, b, zr int) int {
	if a != zr {
		return a
	}
	if b != zr {
		return b
	}
	panic("butterfly: a level with no live input")
}

func zero(s isa, r int) { emit("VXORPS %s, %s, %s", s.r(r), s.r(r), s.r(r)) }

// ---------------------------------------------------------------------------
// Matrix kernels.

// genAxpy: y[j] = fma chain over p < k of x[p]*W(p, j), starting from y[j],
// for j < n. W(p, j) is at w + p*ldw + j*size; for q8 its scale is at
// s + p*lds + (j/32)*4. This is the decode (matrix-vector) form of MatMul.
func genAxpy(s isa, dt dtype) {
	name := "axpy" + dt.name + s.name
	fr := text(name, "", []param{p("y", "*float32"), p("x", "*float32"), p("w", "unsafe.Pointer"), p("ldw", "int"),
		p("k", "int"), p("n", "int"), p("s", "*float32"), p("lds", "int")})
	fr.arg("y", "DI")
	fr.arg("x", "SI")
	fr.arg("w", "DX")
	fr.arg("ldw", "R8")
	fr.arg("k", "R9")
	fr.arg("n", "R10")
	fr.arg("s", "R11")
	fr.arg("lds", "R12")
	emit("LEAQ (SI)(R9*4), R9") // end of x
	emit("XORQ BX, BX")         // j
	if dt == q8 {
		emit("MOVQ R8, R14")
		emit("SHLQ $4, R14")
	}

	// bf16 with AVX-512 splits each 64 bytes of weights into even and odd
	// columns (below) and keeps them in separate accumulators; these are
	// the permutations in and out of that order, and the mask of the odd
	// columns' bits.
	evenOdd := dt == bf16 && s.lanes == 16
	if evenOdd {
		for i, v := range []string{"even", "odd", "interlo", "interhi"} {
			emit("VMOVDQU32 %s, Z%d", perm(v), 20+i)
		}
		emit("VPBROADCASTD %s, Z24", c("hiwords"))
	}

	// Register use: accumulators 0..3, broadcast x 4, weights 5..8, scales
	// 9, 10; for even and odd columns, also 11, 12 and 20..24.
	for _, u := range []int{4, 1} {
		width := u * s.lanes
		lbl := fmt.Sprintf("chunk%d", u)
		next := fmt.Sprintf("chunk%d_end", u)
		label(lbl)
		emit("LEAQ %d(BX), AX", width)
		emit("CMPQ AX, R10")
		emit("JGT %s", next)
		eo := evenOdd && u == 4
		for i := 0; i < u; i++ {
			if eo && i%2 == 0 {
				// Accumulators i and i+1 take the even and odd columns
				// of the 32 at i*16.
				emit("VMOVUPS %d(DI)(BX*4), Z11", i*s.vbytes())
				emit("VMOVUPS %d(DI)(BX*4), Z12", (i+1)*s.vbytes())
				emit("VMOVAPS Z11, Z%d", i)
				emit("VPERMT2PS Z12, Z20, Z%d", i)
				emit("VMOVAPS Z11, Z%d", i+1)
				emit("VPERMT2PS Z12, Z21, Z%d", i+1)
			}
			if !eo {
				emit("VMOVUPS %d(DI)(BX*4), %s", i*s.vbytes(), s.r(i))
			}
		}
		emit("LEAQ (DX)(BX*%d), AX", dt.size)
		if dt == q8 {
			emit("MOVQ BX, R13")
			emit("SHRQ $5, R13")
			emit("LEAQ (R11)(R13*4), R13")
		}
		emit("MOVQ SI, CX")
		ploop := fmt.Sprintf("p%d", u)
		label(ploop)
		emit("VBROADCASTSS (CX), %s", s.r(4))
		if dt == q8 {
			// q8_0 multiplies the input by the block's scale, once per
			// row and block, instead of every weight: x*s, then
			// fma(x*s, q, acc). The GEMM micro-kernel does the same.
			mulScale(s, "(R13)", 4, 9)
			if width > 32 {
				mulScale(s, "4(R13)", 4, 10)
			}
		}
		if u > 1 {
			// Fetch into L2 what the next call, for the next gemvRows rows
			// of w, will read at this column, so that every row streams
			// from cache rather than waiting on memory.
			for off := 0; off < width*dt.size; off += 64 {
				if dt == q8 {
					emit("PREFETCHT1 %d(AX)(R14*1)", off)
					continue
				}
				emit("PREFETCHT1 %d(AX)(R8*%d)", off, gemvRows)
			}
		}
		for i := 0; i < u; i++ {
			addr := fmt.Sprintf("%d(AX)", i*s.lanes*dt.size)
			if eo {
				// 64 bytes hold 16 pairs of bf16 columns: shifted left,
				// each pair's low (even) column is a float32; masked, its
				// high (odd) one. Two operations per 32 weights where
				// widening takes four. One load feeds both (not each
				// operation its own): every operation a cache line costs
				// leaves fewer lines in flight, and streaming from memory
				// the one-load form ran 2-7% faster (34 alternations).
				if i%2 == 0 {
					addr = fmt.Sprintf("%d(AX)", i/2*64)
					emit("VMOVDQU32 %s, Z%d", addr, 6+i)
					emit("VPSLLD $16, Z%d, Z%d", 6+i, 5+i)
					emit("VPANDD Z%d, Z24, Z%d", 6+i, 6+i)
				}
				emit("VFMADD231PS Z%d, Z4, Z%d", 5+i, i)
				continue
			}
			if dt == f32 {
				emit("VFMADD231PS %s, %s, %s", addr, s.r(4), s.r(i))
				continue
			}
			if dt == q8 {
				xs := s.r(9)
				if (i*s.lanes)/32 == 1 {
					xs = s.r(10)
				}
				emit("VPMOVSXBD %s, %s", addr, s.r(5+i))
				emit("VCVTDQ2PS %s, %s", s.r(5+i), s.r(5+i))
				emit("VFMADD231PS %s, %s, %s", s.r(5+i), xs, s.r(i))
				continue
			}
			loadW(s, dt, addr, s.r(5+i))
			emit("VFMADD231PS %s, %s, %s", s.r(5+i), s.r(4), s.r(i))
		}
		emit("ADDQ $4, CX")
		emit("ADDQ R8, AX")
		if dt == q8 {
			emit("ADDQ R12, R13")
		}
		emit("CMPQ CX, R9")
		emit("JNE %s", ploop)
		for i := 0; i < u; i++ {
			if eo && i%2 == 0 {
				emit("VMOVAPS Z%d, Z11", i)
				emit("VPERMT2PS Z%d, Z22, Z11", i+1)
				emit("VMOVAPS Z%d, Z12", i)
				emit("VPERMT2PS Z%d, Z23, Z12", i+1)
				emit("VMOVUPS Z11, %d(DI)(BX*4)", i*s.vbytes())
				emit("VMOVUPS Z12, %d(DI)(BX*4)", (i+1)*s.vbytes())
			}
			if !eo {
				emit("VMOVUPS %s, %d(DI)(BX*4)", s.r(i), i*s.vbytes())
			}
		}
		emit("ADDQ $%d, BX", width)
		emit("JMP %s", lbl)
		label(next)
	}

	// Scalar tail, one column at a time, with the same fused operation.
	emit("VXORPS X3, X3, X3")
	label("tail")
	emit("CMPQ BX, R10")
	emit("JGE done")
	emit("VMOVSS (DI)(BX*4), X0")
	emit("LEAQ (DX)(BX*%d), AX", dt.size)
	if dt == q8 {
		emit("MOVQ BX, R13")
		emit("SHRQ $5, R13")
		emit("LEAQ (R11)(R13*4), R13")
	}
	emit("MOVQ SI, CX")
	label("tp")
	emit("VMOVSS (CX), X1")
	if dt == q8 {
		emit("VMULSS (R13), X1, X1")
		emit("VPINSRB $0, (AX), X3, X2")
		emit("VPMOVSXBD X2, X2")
		emit("VCVTDQ2PS X2, X2")
	} else {
		loadW1(dt, "(AX)", 2, 3)
	}
	emit("VFMADD231SS X2, X1, X0")
	emit("ADDQ $4, CX")
	emit("ADDQ R8, AX")
	if dt == q8 {
		emit("ADDQ R12, R13")
	}
	emit("CMPQ CX, R9")
	emit("JNE tp")
	emit("VMOVSS X0, (DI)(BX*4)")
	emit("INCQ BX")
	emit("JMP tail")
	label("done")
	ret()
}

// mulScale sets vector register dst to register x times the float32 at
// mem, broadcast.
func mulScale(s isa, mem string, xr, dst int) {
	if s.lanes == 16 {
		emit("VMULPS.BCST %s, %s, %s", mem, s.r(xr), s.r(dst))
		return
	}
	emit("VBROADCASTSS %s, %s", mem, s.r(dst))
	emit("VMULPS %s, %s, %s", s.r(xr), s.r(dst), s.r(dst))
}

// genDot: out[r] = lane-dot of x[:k] with row r of W, for r < rows. Row r
// is at w + r*ldw (s and lds are unused: the signature is axpy's). k must
// be a positive multiple of the lane count.
func genDot(s isa, dt dtype) {
	name := "dot" + dt.name + s.name
	fr := text(name, "", []param{p("out", "*float32"), p("x", "*float32"), p("w", "unsafe.Pointer"), p("ldw", "int"),
		p("k", "int"), p("rows", "int"), p("s", "*float32"), p("lds", "int")})
	fr.arg("out", "DI")
	fr.arg("x", "SI")
	fr.arg("w", "DX")
	fr.arg("ldw", "R8")
	fr.arg("k", "R9")
	fr.arg("rows", "R10")
	emit("LEAQ (SI)(R9*4), R9") // end of x

	step := s.lanes // input elements per iteration
	// Registers: accumulators 0..3, x 4, weights 5..8.
	for _, nrows := range []int{4, 1} {
		grp := fmt.Sprintf("g%d", nrows)
		grpEnd := fmt.Sprintf("g%d_end", nrows)
		label(grp)
		emit("CMPQ R10, $%d", nrows)
		emit("JLT %s", grpEnd)
		for r := 0; r < nrows; r++ {
			zero(s, r)
		}
		emit("MOVQ SI, R15")
		emit("MOVQ DX, AX")
		rowAddr := []string{"(AX)", "(AX)(R8*1)", "(AX)(R8*2)", "(BX)"}
		if nrows == 4 {
			emit("LEAQ (DX)(R8*2), BX")
			emit("ADDQ R8, BX")
			emit("LEAQ (DX)(R8*8), R14")
			emit("ADDQ R8, R14")
		}
		loop := fmt.Sprintf("l%d", nrows)
		label(loop)
		if nrows == 4 {
			// Fetch the rows two groups ahead at this column: rows r+8
			// (AX + 8 ldw), r+9 and r+10 (R14 = AX + 9 ldw), r+11 (BX + 8 ldw),
			// into L2, as axpy does: a fetch into L1 holds one of the
			// core's few line-fill buffers until memory answers, which
			// held the output head to ~22 GB/s on two threads (26 into L2).
			for off := 0; off < step*dt.size; off += 64 {
				for _, a := range []string{"(AX)(R8*8)", "(R14)", "(R14)(R8*1)", "(BX)(R8*8)"} {
					emit("PREFETCHT1 %d%s", off, a)
				}
			}
		}
		for v := 0; v < step/s.lanes; v++ {
			emit("VMOVUPS %d(R15), %s", v*s.vbytes(), s.r(4))
			for r := 0; r < nrows; r++ {
				addr := fmt.Sprintf("%d%s", v*s.lanes*dt.size, rowAddr[r])
				if dt == f32 {
					emit("VFMADD231PS %s, %s, %s", addr, s.r(4), s.r(r))
					continue
				}
				loadW(s, dt, addr, s.r(5+r))
				emit("VFMADD231PS %s, %s, %s", s.r(5+r), s.r(4), s.r(r))
			}
		}
		emit("ADDQ $%d, R15", step*4)
		emit("ADDQ $%d, AX", step*dt.size)
		if nrows == 4 {
			emit("ADDQ $%d, BX", step*dt.size)
			emit("ADDQ $%d, R14", step*dt.size)
		}
		emit("CMPQ R15, R9")
		emit("JNE %s", loop)
		for r := 0; r < nrows; r++ {
			reduce(s, r, 5+r)
			emit("VMOVSS X%d, %d(DI)", r, 4*r)
		}
		emit("ADDQ $%d, DI", 4*nrows)
		if nrows == 4 {
			emit("LEAQ (DX)(R8*4), DX")
		} else {
			emit("ADDQ R8, DX")
		}
		emit("SUBQ $%d, R10", nrows)
		emit("JMP %s", grp)
		label(grpEnd)
	}
	ret()
}

// genDotQ8Q8: the q8_0 dot products of mx quantized rows of x with rows
// rows of w, in integers but for the scales: w's rows are int8 (stride ldw
// bytes), their scales one float32 per 32 values (stride lds bytes), and
// out[i*ldo/4 + r] = the lanes' sum of float32(int32 lane) * (row scale *
// input scale), over k inputs (a positive multiple of 64). x is laid out
// as kernels.q8Acts keeps it: for each 64 inputs, a group of 256 bytes per
// row of x (the rows' groups side by side, then the next 64 inputs' ldx
// bytes on): 64 int8 values, 16 float32 lane scales (each block's scale for
// its 8 lanes of 4 values), 16 int32 corrections (-128 times each lane's
// sum of values), 64 bytes of padding.
//
// A lane holds the exact integer dot product of 4 inputs with 4 weights,
// whichever way it is computed: AVX-512 VNNI (VPDPBUSD) multiplies unsigned
// by signed bytes, so it takes the weights plus 128 (w XOR 0x80) and starts
// each lane from its correction; AVX2 takes |x| and w with x's sign
// (VPMADDUBSW, whose pairs of products cannot saturate for values in
// [-127, 127]), then sums pairs of pairs (VPMADDWD by ones). Then, per 64
// (AVX-512) or 32 (AVX2) inputs, each output's lanes are converted, scaled
// and added by one fused multiply-add, and at the end reduced with
// reduce's tree: the same operations in the same order whatever mx is.
func genDotQ8Q8(s isa, mx int) {
	name := fmt.Sprintf("dotQ8Q8x%d%s", mx, s.name)
	fr := text(name, "", []param{p("out", "*float32"), p("ldo", "int"), p("x", "unsafe.Pointer"), p("ldx", "int"),
		p("w", "unsafe.Pointer"), p("ldw", "int"), p("k", "int"), p("rows", "int"), p("s", "*float32"), p("lds", "int")})
	fr.arg("out", "DI")
	fr.arg("w", "AX")
	fr.arg("ldw", "R8")
	fr.arg("k", "R9")
	fr.arg("rows", "R10")
	fr.arg("s", "R11")
	fr.arg("lds", "R12")
	wide := s.lanes == 16
	if wide {
		emit("VMOVUPS %s, Z31", c("bytes80"))
		emit("VMOVDQU32 %s, Z30", perm("halves"))
	} else {
		emit("VMOVUPS %s, Y7", c("words1"))
	}
	// AVX-512 registers: accumulators 0..4*mx-1 (row i of x, row r of w at
	// 4i+r), then weights (4), their scales (4), x (mx), lane scales (mx),
	// two integer and one scale temporaries, with one row of x its
	// corrections; 30 and 31 hold constants. AVX2 (mx 1): accumulators
	// 0..3, x 4, |x| 5, lane scales 6, ones 7, weights (then lanes) 8..11,
	// scales 12..15.
	wReg := func(r int) int { return 4*mx + r }
	swReg := func(r int) int { return 4*mx + 4 + r }
	xReg := func(i int) int { return 4*mx + 8 + i }
	xlReg := func(i int) int { return 4*mx + 8 + mx + i }
	tmp := 4*mx + 8 + 2*mx
	// With one row of x, registers to spare hold its corrections for a
	// step; each row of w starts from a copy, not a load.
	corrReg, hoist := tmp+3, wide && mx == 1
	if wide && (tmp+3 > 30 || hoist && corrReg >= 30) {
		panic("genDotQ8Q8: out of registers")
	}
	wAddr := []string{"(AX)(CX*1)", "(R13)(CX*1)", "(R14)(CX*1)", "(R15)(CX*1)"}
	sAddr := []string{"(R11)", "(R11)(R12*1)", "(R11)(R12*2)", "(DX)"}
	for _, nrows := range []int{4, 1} {
		grp := fmt.Sprintf("g%d", nrows)
		grpEnd := fmt.Sprintf("g%d_end", nrows)
		label(grp)
		emit("CMPQ R10, $%d", nrows)
		emit("JLT %s", grpEnd)
		for i := 0; i < mx; i++ {
			for r := 0; r < nrows; r++ {
				zero(s, 4*i+r)
			}
		}
		emit("XORQ CX, CX")
		fr.arg("x", "SI")
		if nrows == 4 {
			emit("LEAQ (AX)(R8*1), R13")
			emit("LEAQ (AX)(R8*2), R14")
			emit("LEAQ (R13)(R8*2), R15")
			emit("LEAQ (R11)(R12*2), DX")
			emit("ADDQ R12, DX")
		}
		// Fetch the rows four groups on, a line per row per step: the
		// rows of a call are one contiguous run of memory (ldw = k), so
		// BX+4*CX walks them at four times this group's pace.
		emit("LEAQ (AX)(R8*8), BX")
		emit("LEAQ (BX)(R8*8), BX")
		loop := fmt.Sprintf("l%d", nrows)
		label(loop)
		if nrows == 4 {
			for off := 0; off < 256; off += 64 {
				emit("PREFETCHT1 %d(BX)(CX*4)", off)
			}
		} else {
			emit("PREFETCHT1 (BX)(CX*1)")
		}
		if wide {
			for i := 0; i < mx; i++ {
				emit("VMOVDQU64 %d(SI), %s", 256*i, s.r(xReg(i)))
				emit("VMOVUPS %d(SI), %s", 256*i+64, s.r(xlReg(i)))
			}
			if hoist {
				emit("VMOVDQU32 128(SI), %s", s.r(corrReg))
			}
			for r := 0; r < nrows; r++ {
				w, sw := s.r(wReg(r)), s.r(swReg(r))
				emit("VPXORD %s, Z31, %s", wAddr[r], w)
				// The row's two block scales, each over its block's 8
				// lanes: one load and a permutation.
				emit("VMOVQ %s, X%d", sAddr[r], swReg(r))
				emit("VPERMD %s, Z30, %s", sw, sw)
				for i := 0; i < mx; i++ {
					acc, sc := s.r(tmp+(i+r)%2), s.r(tmp+2)
					if hoist {
						emit("VMOVDQA32 %s, %s", s.r(corrReg), acc)
					} else {
						emit("VMOVDQU32 %d(SI), %s", 256*i+128, acc)
					}
					emit("VPDPBUSD %s, %s, %s", s.r(xReg(i)), w, acc)
					emit("VCVTDQ2PS %s, %s", acc, acc)
					emit("VMULPS %s, %s, %s", s.r(xlReg(i)), sw, sc)
					emit("VFMADD231PS %s, %s, %s", acc, sc, s.r(4*i+r))
				}
			}
		} else {
			for h := 0; h < 2; h++ {
				emit("VMOVDQU %d(SI), Y4", 32*h)
				emit("VPABSB Y4, Y5")
				emit("VMOVUPS %d(SI), Y6", 64+32*h)
				for r := 0; r < nrows; r++ {
					w, sc := s.r(8+r), s.r(12+r)
					emit("VMOVDQU %d%s, %s", 32*h, wAddr[r], w)
					emit("VPSIGNB Y4, %s, %s", w, w)
					emit("VPMADDUBSW %s, Y5, %s", w, w)
					emit("VPMADDWD Y7, %s, %s", w, w)
					emit("VCVTDQ2PS %s, %s", w, w)
					emit("VBROADCASTSS %d%s, %s", 4*h, sAddr[r], sc)
					emit("VMULPS Y6, %s, %s", sc, sc)
					emit("VFMADD231PS %s, %s, %s", w, sc, s.r(r))
				}
			}
		}
		emit("ADDQ %s, SI", fr.mem("ldx"))
		emit("ADDQ $64, CX")
		emit("ADDQ $8, R11")
		if nrows == 4 {
			emit("ADDQ $8, DX")
		}
		emit("CMPQ CX, R9")
		emit("JNE %s", loop)
		emit("MOVQ R9, BX") // back to this group's scales: 8 bytes per 64 inputs
		emit("SHRQ $3, BX")
		emit("SUBQ BX, R11")
		emit("MOVQ DI, BX")
		for i := 0; i < mx; i++ {
			if i > 0 {
				emit("ADDQ %s, BX", fr.mem("ldo"))
			}
			for r := 0; r < nrows; r++ {
				a := 4*i + r
				reduce(s, a, tmp)
				emit("VMOVSS X%d, %d(BX)", a, 4*r)
			}
		}
		emit("ADDQ $%d, DI", 4*nrows)
		if nrows == 4 {
			emit("LEAQ (AX)(R8*4), AX")
			emit("LEAQ (R11)(R12*4), R11")
		} else {
			emit("ADDQ R8, AX")
			emit("ADDQ R12, R11")
		}
		emit("SUBQ $%d, R10", nrows)
		emit("JMP %s", grp)
		label(grpEnd)
	}
	ret()
}

// genQuantQ8 quantizes blocks of 32 float32 into the q8Acts layout (see
// ../../q8.go), bit for bit as the Go reference quantizeBlocks does: the largest |x| by
// integer compare of the bits (so that a NaN or infinity shows as bits >=
// 0x7f800000), d = amax/127, values x·(1/d) rounded to nearest even by
// VCVTPS2DQ (Go leaves MXCSR at its default), packed to int8, and each
// lane's -128 × sum of 4 values. x is read from SI, blocks from CX, the
// record from DI whose groups are stride bytes apart; the first block
// goes in the first half of its group.
func genQuantQ8(s isa) {
	fr := text("quantQ8"+s.name, "", []param{p("rec", "unsafe.Pointer"), p("stride", "int"), p("x", "*float32"), p("blocks", "int")})
	fr.arg("rec", "DI")
	fr.arg("stride", "R9")
	fr.arg("x", "SI")
	fr.arg("blocks", "CX")
	wide := s.lanes == 16
	emit("VMOVUPS %s, %s", c("absmask"), s.r(10))
	emit("VMOVDQU %s, Y11", c("bytes1"))
	emit("VMOVDQU %s, Y12", c("words1"))
	emit("VPXOR Y13, Y13, Y13")
	emit("XORQ R8, R8") // the half of the group: 0 or 32
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	// Registers: x in 0..3 (0..1 for AVX-512), |x| bits 4..7, d in 8,
	// 1/d in 9.
	nv := 32 / s.lanes
	for v := 0; v < nv; v++ {
		emit("VMOVUPS %d(SI), %s", v*s.vbytes(), s.r(v))
		if wide {
			emit("VPANDD %s, %s, %s", s.r(10), s.r(v), s.r(4+v))
		} else {
			emit("VPAND %s, %s, %s", s.r(10), s.r(v), s.r(4+v))
		}
	}
	for v := 1; v < nv; v++ {
		emit("VPMAXUD %s, %s, %s", s.r(4+v), s.r(4), s.r(4))
	}
	if wide {
		emit("VEXTRACTI64X4 $1, Z4, Y5")
		emit("VPMAXUD Y5, Y4, Y4")
	}
	emit("VEXTRACTI128 $1, Y4, X5")
	emit("VPMAXUD X5, X4, X4")
	emit("VPSHUFD $0x4e, X4, X5")
	emit("VPMAXUD X5, X4, X4")
	emit("VPSHUFD $0xb1, X4, X5")
	emit("VPMAXUD X5, X4, X4")
	emit("VMOVD X4, AX")
	emit("CMPL AX, $0x7f800000")
	emit("JAE nonfinite")
	emit("VDIVSS %s, X4, X8", c("q8max"))
	// 1/d, or 0 where d is 0 or subnormal (then 1/d could overflow).
	emit("VXORPS X9, X9, X9")
	emit("VMOVD X8, AX")
	emit("CMPL AX, $0x00800000")
	emit("JB scaled")
	emit("VMOVSS %s, X9", c("one"))
	emit("VDIVSS X8, X9, X9")
	label("scaled")
	emit("VBROADCASTSS X9, %s", s.r(9))
	for v := 0; v < nv; v++ {
		emit("VMULPS %s, %s, %s", s.r(9), s.r(v), s.r(v))
		emit("VCVTPS2DQ %s, %s", s.r(v), s.r(v))
	}
	if wide {
		emit("VPMOVDB Z0, X0")
		emit("VPMOVDB Z1, X1")
		emit("VINSERTI128 $1, X1, Y0, Y0")
	} else {
		// Packing interleaves the 128-bit halves; the quadword
		// permutations put the 32 values back in order.
		emit("VPACKSSDW Y1, Y0, Y0")
		emit("VPERMQ $0xd8, Y0, Y0")
		emit("VPACKSSDW Y3, Y2, Y2")
		emit("VPERMQ $0xd8, Y2, Y2")
		emit("VPACKSSWB Y2, Y0, Y0")
		emit("VPERMQ $0xd8, Y0, Y0")
	}
	emit("VMOVDQU Y0, (DI)(R8*1)")
	emit("VBROADCASTSS X8, Y8")
	emit("VMOVUPS Y8, 64(DI)(R8*1)")
	emit("VPMADDUBSW Y0, Y11, Y1")
	emit("VPMADDWD Y12, Y1, Y1")
	emit("VPSLLD $7, Y1, Y1")
	emit("VPSUBD Y1, Y13, Y1")
	emit("VMOVDQU Y1, 128(DI)(R8*1)")
	emit("JMP next")
	label("nonfinite") // values 0, scale NaN
	emit("VMOVDQU Y13, (DI)(R8*1)")
	emit("VMOVDQU Y13, 128(DI)(R8*1)")
	emit("VMOVUPS %s, Y8", c("nan"))
	emit("VMOVUPS Y8, 64(DI)(R8*1)")
	label("next")
	emit("ADDQ $128, SI")
	emit("XORQ $32, R8")
	emit("JNZ half")
	emit("ADDQ R9, DI")
	label("half")
	emit("DECQ CX")
	emit("JNZ loop")
	label("done")
	ret()
}

// genDotTile: the register-tiled form of dot for many rows of x: for each
// of tiles runs of nr rows of w (stride ldw bytes; one run after another),
// an mr x nr block of out (row stride ldo bytes; blocks side by side) =
// lane-dots of mr rows of x (stride ldx bytes) with the nr rows, all
// float32. k is a positive multiple of the lane count; tiles is positive.
// One call for a whole run of tiles keeps the call's overhead off each.
// Each iteration of the inner loop also asks for the cache line at pf,
// then moves pf on by pfs bytes: the caller's way to fetch the weights
// it will want next while these compute.
func genDotTile(s isa, dt dtype) (mr, nr int) {
	mr, nr = 6, 4
	if s.lanes == 8 {
		mr, nr = 4, 3
	}
	genDotTileShape(s, dt, "dotTile", mr, nr)
	return mr, nr
}

// genDotTileEdge is genDotTile for the last rows of x: 4 rows, so that a
// batch of 16 (6+6+4) or of 4 computes no padding rows. Only for AVX-512,
// whose main shape is 6 rows.
func genDotTileEdge(s isa, dt dtype) (mr int) {
	genDotTileShape(s, dt, "dotTileEdge", 4, 4)
	return 4
}

func genDotTileShape(s isa, dt dtype, base string, mr, nr int) {
	name := base + dt.name + s.name
	fr := text(name, "", []param{p("out", "*float32"), p("ldo", "int"), p("x", "*float32"), p("ldx", "int"),
		p("w", "unsafe.Pointer"), p("ldw", "int"), p("k", "int"), p("tiles", "int"),
		p("pf", "unsafe.Pointer"), p("pfs", "int")})
	// Constant: R11 x, AX ldx, R9 ldw, R12 iterations per tile, R15 ldo.
	// Per tile: DI out, R14 w, R13 tiles left; SI, BX, DX, CX, R10 run
	// through the loop.
	fr.arg("out", "DI")
	fr.arg("x", "R11")
	fr.arg("ldx", "AX")
	fr.arg("w", "R14")
	fr.arg("ldw", "R9")
	fr.arg("k", "R12")
	fr.arg("tiles", "R13")
	fr.arg("ldo", "R15")
	fr.arg("pf", "R8")
	emit("SHRQ $%d, R12", map[int]int{8: 3, 16: 4}[s.lanes]) // iterations
	acc := func(i, j int) int { return i*nr + j }
	wr := mr * nr // first weight register
	xr := wr + nr // x register
	zr, t1, t2, xt := wr, wr+1, wr+2, wr+3
	label("tile")
	emit("MOVQ R11, SI")
	xAddr := rowAddrs("SI", "AX", "BX")
	emit("MOVQ R14, DX")
	wAddr := rowAddrs("DX", "R9", "CX")[:4]
	emit("MOVQ R12, R10")
	for i := 0; i < mr*nr; i++ {
		zero(s, i)
	}
	label("loop")
	emit("PREFETCHT0 (R8)")
	emit("ADDQ %s, R8", fr.mem("pfs"))
	for j := 0; j < nr; j++ {
		loadW(s, dt, wAddr[j], s.r(wr+j))
	}
	for i := 0; i < mr; i++ {
		emit("VMOVUPS %s, %s", xAddr[i], s.r(xr))
		for j := 0; j < nr; j++ {
			emit("VFMADD231PS %s, %s, %s", s.r(wr+j), s.r(xr), s.r(acc(i, j)))
		}
	}
	emit("ADDQ $%d, SI", s.vbytes())
	emit("ADDQ $%d, BX", s.vbytes())
	emit("ADDQ $%d, DX", s.lanes*dt.size)
	emit("ADDQ $%d, CX", s.lanes*dt.size)
	emit("DECQ R10")
	emit("JNZ loop")
	// Sum each accumulator's lanes, s.lanes accumulators at a time, and
	// store each sum from its lane.
	outRow := rowAddrs("DI", "R15", "BX")
	zero(s, zr)
	for g := 0; g < mr*nr; g += s.lanes {
		var accs []int
		for t := g; t < min(g+s.lanes, mr*nr); t++ {
			accs = append(accs, t)
		}
		lane := butterfly(s, accs, zr, t1, t2)
		res := accs[0]
		if nr == 4 && lane[0] == 0 && (len(accs) < 4 || lane[1] == 2) {
			// Each 128-bit block holds one row's four sums in the order
			// 0, 2, 1, 3: put them in order and store the blocks whole.
			emit("VPERMILPS $0xd8, %s, %s", s.r(res), s.r(res))
			for k := 0; k < s.lanes/4; k++ {
				idx := slices.Index(lane, 4*k)
				if idx < 0 {
					continue
				}
				row := outRow[accs[idx]/nr]
				switch {
				case k == 0:
					emit("VMOVUPS %s, %s", x(res), row)
				case s.lanes == 16:
					emit("VEXTRACTF32X4 $%d, %s, %s", k, s.r(res), row)
				default:
					emit("VEXTRACTF128 $%d, %s, %s", k, s.r(res), row)
				}
			}
			continue
		}
		for k := 0; k < s.lanes/4; k++ {
			src := x(res)
			if k > 0 {
				src = x(xt)
				if s.lanes == 16 {
					emit("VEXTRACTF32X4 $%d, %s, %s", k, s.r(res), src)
				} else {
					emit("VEXTRACTF128 $%d, %s, %s", k, s.r(res), src)
				}
			}
			for idx, l := range lane {
				if l/4 == k {
					t := accs[idx]
					emit("VEXTRACTPS $%d, %s, %d%s", l%4, src, 4*(t%nr), outRow[t/nr])
				}
			}
		}
	}
	// Next run of nr rows of w, and the next nr columns of out.
	emit("ADDQ $%d, DI", 4*nr)
	for j := 0; j < nr; j++ {
		emit("ADDQ R9, R14")
	}
	emit("DECQ R13")
	emit("JNZ tile")
	ret()
}

// gemmTile is the register layout the GEMM micro-kernels share: mr rows
// of u vector accumulators over C, whose rows are at cAddr (DI, stride R8;
// BX the fourth row), multiplied from rows of A at aAddr (SI, stride R9;
// R10 the fourth row).
type gemmTile struct {
	s            isa
	mr, u        int
	cAddr, aAddr []string
}

// newGemmTile emits the row addresses' set-up and returns the layout.
func newGemmTile(s isa, mr, u int) gemmTile {
	cAddr := rowAddrs("DI", "R8", "BX")
	aAddr := rowAddrs("SI", "R9", "R10")
	return gemmTile{s: s, mr: mr, u: u, cAddr: cAddr, aAddr: aAddr}
}

// rowAddrs sets register r3 to base + 3*ld and returns the addresses of
// six rows ld bytes apart from register base: three from base, three
// from r3 (an x86 index scales by at most 8, and 4 and 5 are not scales).
func rowAddrs(base, ld, r3 string) []string {
	emit("LEAQ (%s)(%s*2), %s", base, ld, r3)
	emit("ADDQ %s, %s", ld, r3)
	return []string{
		"(" + base + ")", "(" + base + ")(" + ld + "*1)", "(" + base + ")(" + ld + "*2)",
		"(" + r3 + ")", "(" + r3 + ")(" + ld + "*1)", "(" + r3 + ")(" + ld + "*2)",
	}
}

// acc is the accumulator register of row i, vector v.
func (t gemmTile) acc(i, v int) int { return i*t.u + v }

// load starts the accumulators from the bias row at R12 (nr values, the
// same for every row) when R12 is not nil, as in the first k block, and
// from C otherwise.
func (t gemmTile) load() {
	emit("TESTQ R12, R12")
	emit("JE loadc")
	t.each(func(i, v int) { emit("VMOVUPS %d(R12), %s", v*t.s.vbytes(), t.s.r(t.acc(i, v))) })
	emit("JMP loop")
	label("loadc")
	t.each(func(i, v int) { emit("VMOVUPS %d%s, %s", v*t.s.vbytes(), t.cAddr[i], t.s.r(t.acc(i, v))) })
}

// store writes the accumulators to C.
func (t gemmTile) store() {
	t.each(func(i, v int) { emit("VMOVUPS %s, %d%s", t.s.r(t.acc(i, v)), v*t.s.vbytes(), t.cAddr[i]) })
}

func (t gemmTile) each(f func(i, v int)) {
	for i := 0; i < t.mr; i++ {
		for v := 0; v < t.u; v++ {
			f(i, v)
		}
	}
}

// genGemm: the GEMM micro-kernel: an mr x nr block of C (row stride ldc
// bytes) += A (mr rows of kc, row stride lda bytes) times B (kc rows of nr,
// row stride ldb bytes: a packed panel, or attention's values in place),
// one fused multiply-add per k in order. With bias not nil the block
// starts from it (each row the same nr values) rather than from C.
func genGemm(s isa) (mr, nr int) {
	return genGemmKernel(s, "gemm"+s.name, f32, false)
}

// genGemmDirect is genGemm reading B in place from the weights, of type
// dt, converted in registers: for batches too small to pay for packing.
// Each k step also asks for the row's next nr columns, the next panel's
// (the caller's next call), so that they come while this panel computes:
// into L2, since the weights come from memory (see genDot).
func genGemmDirect(s isa, dt dtype) {
	genGemmKernel(s, "gemmDirect"+dt.name+s.name, dt, true)
}

func genGemmKernel(s isa, name string, dt dtype, direct bool) (mr, nr int) {
	mr, u := 6, 4 // rows, vectors per row
	if s.lanes == 8 {
		u = 2
	}
	nr = u * s.lanes
	bType := "*float32"
	if direct {
		bType = "unsafe.Pointer"
	}
	fr := text(name, "", []param{p("kc", "int"), p("a", "*float32"), p("lda", "int"), p("b", bType), p("ldb", "int"),
		p("c", "*float32"), p("ldc", "int"), p("bias", "*float32")})
	fr.arg("kc", "CX")
	fr.arg("a", "SI")
	fr.arg("lda", "R9")
	fr.arg("b", "DX")
	fr.arg("ldb", "R11")
	fr.arg("c", "DI")
	fr.arg("ldc", "R8")
	t := newGemmTile(s, mr, u)
	aAddr, acc := t.aAddr, t.acc
	br := mr * u // first B register
	ar := br + u // broadcast registers ar, ar+1
	fr.arg("bias", "R12")
	// Ask for the C tile of the next call (the next mr rows) while this
	// one computes: out is megabytes for a prompt, and its rows are too
	// far apart for the hardware prefetchers.
	emit("LEAQ (BX)(R8*2), R13") // the next tile's first row: six rows on
	emit("ADDQ R8, R13")
	next := rowAddrs("R13", "R8", "R14")
	for i := 0; i < mr; i++ {
		for off := 0; off < nr*4; off += 64 {
			emit("PREFETCHT0 %d%s", off, next[i])
		}
	}
	t.load()
	label("loop")
	if direct {
		for off := nr * dt.size; off < 2*nr*dt.size; off += 64 {
			emit("PREFETCHT1 %d(DX)", off)
		}
	}
	for v := 0; v < u; v++ {
		loadW(s, dt, fmt.Sprintf("%d(DX)", v*s.lanes*dt.size), s.r(br+v))
	}
	for i := 0; i < mr; i++ {
		a := s.r(ar + i%2)
		emit("VBROADCASTSS %s, %s", aAddr[i], a)
		for v := 0; v < u; v++ {
			emit("VFMADD231PS %s, %s, %s", s.r(br+v), a, s.r(acc(i, v)))
		}
	}
	emit("ADDQ $4, SI")
	emit("ADDQ $4, R10")
	emit("ADDQ R11, DX")
	emit("DECQ CX")
	emit("JNZ loop")
	t.store()
	ret()
	return mr, nr
}

// genGemmQ8 is genGemm for q8_0 weights: the B panel holds the int8
// values as float32 and sp their scales, nr/32 per k (one for AVX2's
// 16-column panels), and each k step multiplies the row's input by the
// scale of each 32-column block before the fused multiply-adds, as the
// matrix-vector kernel (genAxpy) does.
func genGemmQ8(s isa) {
	mr, u := 6, 4
	if s.lanes == 8 {
		u = 2
	}
	nr := u * s.lanes
	blocks := max(1, nr/32)
	name := "gemmQ8" + s.name
	fr := text(name, "", []param{p("kc", "int"), p("a", "*float32"), p("lda", "int"), p("b", "*float32"),
		p("sp", "*float32"), p("c", "*float32"), p("ldc", "int"), p("bias", "*float32")})
	fr.arg("kc", "CX")
	fr.arg("a", "SI")
	fr.arg("lda", "R9")
	fr.arg("b", "DX")
	fr.arg("sp", "R11")
	fr.arg("c", "DI")
	fr.arg("ldc", "R8")
	t := newGemmTile(s, mr, u)
	aAddr, acc := t.aAddr, t.acc
	br := mr * u      // B registers
	sr := br + u      // scale registers (AVX-512) / x*s register (AVX2)
	tr := sr + blocks // x*s registers (AVX-512)
	fr.arg("bias", "R12")
	t.load()
	label("loop")
	for v := 0; v < u; v++ {
		emit("VMOVUPS %d(DX), %s", v*s.vbytes(), s.r(br+v))
	}
	if s.lanes == 16 {
		for b := 0; b < blocks; b++ {
			emit("VBROADCASTSS %d(R11), %s", 4*b, s.r(sr+b))
		}
		for i := 0; i < mr; i++ {
			for b := 0; b < blocks; b++ {
				emit("VMULPS.BCST %s, %s, %s", aAddr[i], s.r(sr+b), s.r(tr+b))
			}
			for v := 0; v < u; v++ {
				emit("VFMADD231PS %s, %s, %s", s.r(br+v), s.r(tr+(v*s.lanes)/32), s.r(acc(i, v)))
			}
		}
	} else {
		// 12 accumulators, 2 B registers, the scale in 15, x*s in 14.
		emit("VBROADCASTSS (R11), %s", s.r(sr+1))
		for i := 0; i < mr; i++ {
			emit("VBROADCASTSS %s, %s", aAddr[i], s.r(sr))
			emit("VMULPS %s, %s, %s", s.r(sr+1), s.r(sr), s.r(sr))
			for v := 0; v < u; v++ {
				emit("VFMADD231PS %s, %s, %s", s.r(br+v), s.r(sr), s.r(acc(i, v)))
			}
		}
	}
	emit("ADDQ $4, SI")
	emit("ADDQ $4, R10")
	emit("ADDQ $%d, DX", 4*nr)
	emit("ADDQ $%d, R11", 4*blocks)
	emit("DECQ CX")
	emit("JNZ loop")
	t.store()
	ret()
}

// genConvert: dst[:n] = float32 of src[:n] (f16 or bf16). n is a
// multiple of the lane count.
func genConvert(s isa, dt dtype) {
	name := "cvt" + dt.name + s.name
	fr := text(name, "", []param{p("dst", "*float32"), p("src", "unsafe.Pointer"), p("n", "int")})
	fr.arg("dst", "DI")
	fr.arg("src", "SI")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	loadW(s, dt, "(SI)", s.r(0))
	emit("VMOVUPS %s, (DI)", s.r(0))
	emit("ADDQ $%d, SI", s.lanes*dt.size)
	emit("ADDQ $%d, DI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	ret()
}

// genPack: the GEMM's packing of one row of weights into panels: for
// i < panels, the nr values at src + i*nr*size go, as float32, to dst +
// i*ldd bytes. q8 values are converted without their scales (the GEMM
// applies those to the input).
func genPack(s isa, dt dtype, nr int) {
	fr := text("pack"+dt.name+s.name, "", []param{p("dst", "*float32"), p("src", "unsafe.Pointer"), p("panels", "int"), p("ldd", "int")})
	fr.arg("dst", "DI")
	fr.arg("src", "SI")
	fr.arg("panels", "CX")
	fr.arg("ldd", "DX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	for v := 0; v < nr/s.lanes; v++ {
		addr := fmt.Sprintf("%d(SI)", v*s.lanes*dt.size)
		if dt == q8 {
			emit("VPMOVSXBD %s, %s", addr, s.r(v))
			emit("VCVTDQ2PS %s, %s", s.r(v), s.r(v))
		} else {
			loadW(s, dt, addr, s.r(v))
		}
	}
	for v := 0; v < nr/s.lanes; v++ {
		emit("VMOVUPS %s, %d(DI)", s.r(v), v*s.vbytes())
	}
	emit("ADDQ $%d, SI", nr*dt.size)
	emit("ADDQ DX, DI")
	emit("DECQ CX")
	emit("JNZ loop")
	label("done")
	ret()
}

// ---------------------------------------------------------------------------
// Elementwise kernels and reductions. n is a multiple of the lane count;
// callers finish the remainder in Go.

// Constants, each repeated 16 times so that any vector load of one works.
var consts = []struct {
	name string
	v    float32
}{
	{"one", 1},
	{"neginf", float32(math.Inf(-1))},
	{"exphi", 88.3762626647949},
	{"explo", -86},
	{"log2e", 1.44269504088896341},
	{"ln2hi", 0.693359375},
	{"ln2lo", -2.12194440e-4},
	{"p5", 1.9875691500e-4},
	{"p4", 1.3981999507e-3},
	{"p3", 8.3334519073e-3},
	{"p2", 4.1665795894e-2},
	{"p1", 1.6666665459e-1},
	{"p0", 5.0000001201e-1},
	{"gelua", 0.044715},
	{"gelum2k", -2 * 0.7978845608028654},
	{"gelu2k", 2 * 0.7978845608028654},
	{"gelu3a", 3 * 0.044715},
	{"bytes80", math.Float32frombits(0x80808080)}, // int8 sign bits, for the q8_0 integer dot
	{"words1", math.Float32frombits(0x00010001)},  // int16 ones, for the q8_0 integer dot
	{"bytes1", math.Float32frombits(0x01010101)},  // int8 ones, to sum q8_0 values in fours
	{"absmask", math.Float32frombits(0x7fffffff)},
	{"q8max", 127},
	{"nan", float32(math.NaN())},
	{"hiwords", math.Float32frombits(0xffff0000)}, // the high bf16 of each pair
}

// perms are index vectors: of VPERMT2PS, taking two vectors' lanes apart
// into even and odd and putting them back together; of VPERMD, spreading
// a q8_0 row's two block scales over the lanes of their blocks.
var perms = []struct {
	name string
	idx  func(i int) int
}{
	{"even", func(i int) int { return 2 * i }},
	{"odd", func(i int) int { return 2*i + 1 }},
	{"interlo", func(i int) int { return i/2 + 16*(i%2) }},
	{"interhi", func(i int) int { return 8 + i/2 + 16*(i%2) }},
	{"halves", func(i int) int { return i / 8 }},
}

func perm(name string) string {
	for i, k := range perms {
		if k.name == name {
			return fmt.Sprintf("perms<>+%d(SB)", 64*i)
		}
	}
	panic("no permutation " + name)
}

func c(name string) string {
	for i, k := range consts {
		if k.name == name {
			return fmt.Sprintf("consts<>+%d(SB)", 64*i)
		}
	}
	panic("no constant " + name)
}

func genConsts() {
	for i, k := range consts {
		for j := 0; j < 16; j++ {
			fmt.Fprintf(&asm, "DATA consts<>+%d(SB)/4, $0x%08x // %s\n", 64*i+4*j, math.Float32bits(k.v), k.name)
		}
	}
	fmt.Fprintf(&asm, "GLOBL consts<>(SB), RODATA|NOPTR, $%d\n", 64*len(consts))
	for i, k := range perms {
		for j := 0; j < 16; j++ {
			fmt.Fprintf(&asm, "DATA perms<>+%d(SB)/4, $%d // %s\n", 64*i+4*j, k.idx(j), k.name)
		}
	}
	fmt.Fprintf(&asm, "GLOBL perms<>(SB), RODATA|NOPTR, $%d\n", 64*len(perms))
}

// exp sets vector register r to exp(r), using t1 and t2. It is Cephes'
// expf: range reduction by ln 2 in two parts and a degree-5 polynomial,
// accurate to about one ulp; inputs are clamped to [-86, 88.38] so that
// the exponent arithmetic never leaves the normal range.
func exp(s isa, r, t1, t2 int) {
	R, T1, T2 := s.r(r), s.r(t1), s.r(t2)
	emit("VMINPS %s, %s, %s", c("exphi"), R, R)
	emit("VMAXPS %s, %s, %s", c("explo"), R, R)
	emit("VMULPS %s, %s, %s", c("log2e"), R, T1)
	if s.lanes == 16 {
		emit("VRNDSCALEPS $0, %s, %s", T1, T1)
	} else {
		emit("VROUNDPS $0, %s, %s", T1, T1)
	}
	emit("VFNMADD231PS %s, %s, %s", c("ln2hi"), T1, R)
	emit("VFNMADD231PS %s, %s, %s", c("ln2lo"), T1, R)
	emit("VMOVUPS %s, %s", c("p5"), T2)
	for _, k := range []string{"p4", "p3", "p2", "p1", "p0"} {
		emit("VFMADD213PS %s, %s, %s", c(k), R, T2)
	}
	// T2 = p*r*r + r + 1
	emit("VMULPS %s, %s, %s", R, T2, T2)
	emit("VFMADD213PS %s, %s, %s", R, R, T2)
	emit("VADDPS %s, %s, %s", c("one"), T2, T2)
	emit("VCVTPS2DQ %s, %s", T1, T1)
	emit("VPSLLD $23, %s, %s", T1, T1)
	emit("VPADDD %s, %s, %s", T1, T2, R)
}

func genGelu(s isa) {
	fr := text("gelu"+s.name, "", []param{p("out", "*float32"), p("x", "*float32"), p("n", "int")})
	fr.arg("out", "DI")
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	X, U := s.r(0), s.r(1)
	emit("VMOVUPS (SI), %s", X)
	emit("VMULPS %s, %s, %s", X, X, U)
	emit("VMULPS %s, %s, %s", c("gelua"), U, U)
	emit("VFMADD213PS %s, %s, %s", X, X, U) // u = x + 0.044715 x^3
	emit("VMULPS %s, %s, %s", c("gelum2k"), U, U)
	exp(s, 1, 2, 3)
	emit("VADDPS %s, %s, %s", c("one"), U, U)
	emit("VDIVPS %s, %s, %s", U, X, U) // x / (1 + exp(-2z)) = 0.5 x (1 + tanh z)
	emit("VMOVUPS %s, (DI)", U)
	emit("ADDQ $%d, SI", s.vbytes())
	emit("ADDQ $%d, DI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	ret()
}

// genGeluBackward: dx[i] = dy[i] * GELU'(x[i]) for the tanh form. With
// s = 1/(1+exp(-2u)), u = k(x + a x^3): 0.5(1+tanh u) = s and
// 1-tanh^2 u = 4s(1-s), so GELU' = s + 2k x s(1-s)(1 + 3a x^2). dx may
// alias dy.
func genGeluBackward(s isa) {
	fr := text("geluBackward"+s.name, "", []param{p("dx", "*float32"), p("x", "*float32"), p("dy", "*float32"), p("n", "int")})
	fr.arg("dx", "DI")
	fr.arg("x", "SI")
	fr.arg("dy", "DX")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	X, X2, U, S, T := s.r(0), s.r(1), s.r(2), s.r(3), s.r(4)
	emit("VMOVUPS (SI), %s", X)
	emit("VMULPS %s, %s, %s", X, X, X2)
	emit("VMULPS %s, %s, %s", c("gelua"), X2, U)
	emit("VFMADD213PS %s, %s, %s", X, X, U) // u/k = x + a x^3
	emit("VMULPS %s, %s, %s", c("gelum2k"), U, U)
	exp(s, 2, 3, 4)
	emit("VADDPS %s, %s, %s", c("one"), U, U)
	emit("VMOVUPS %s, %s", c("one"), S)
	emit("VDIVPS %s, %s, %s", U, S, S) // s
	emit("VMOVUPS %s, %s", c("one"), T)
	emit("VSUBPS %s, %s, %s", S, T, T) // 1-s
	emit("VMULPS %s, %s, %s", S, T, T)
	emit("VMULPS %s, %s, %s", X, T, T)
	emit("VMULPS %s, %s, %s", c("gelu2k"), T, T) // 2k x s(1-s)
	emit("VMULPS %s, %s, %s", c("gelu3a"), X2, X2)
	emit("VADDPS %s, %s, %s", c("one"), X2, X2)
	emit("VFMADD213PS %s, %s, %s", S, X2, T)
	emit("VMULPS (DX), %s, %s", T, T)
	emit("VMOVUPS %s, (DI)", T)
	emit("ADDQ $%d, SI", s.vbytes())
	emit("ADDQ $%d, DX", s.vbytes())
	emit("ADDQ $%d, DI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	ret()
}

// genExpSum: x[i] = exp(x[i] - m); returns the lane-tree sum of the results.
func genExpSum(s isa) {
	fr := text("expSum"+s.name, "", []param{p("x", "*float32"), p("n", "int"), f("m")}, f("sum"))
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	emit("VBROADCASTSS %s, %s", fr.mem("m"), s.r(5))
	zero(s, 4)
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	emit("VMOVUPS (SI), %s", s.r(0))
	emit("VSUBPS %s, %s, %s", s.r(5), s.r(0), s.r(0))
	exp(s, 0, 1, 2)
	emit("VMOVUPS %s, (SI)", s.r(0))
	emit("VADDPS %s, %s, %s", s.r(0), s.r(4), s.r(4))
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	reduce(s, 4, 1)
	emit("VMOVSS X4, %s", fr.mem("sum"))
	ret()
}

// genMax returns the largest of x[:n], n > 0.
// genMaxNum returns the largest value of x[:n] (n a positive multiple of
// the lane count) that is not NaN, or -Inf if there is none: VMAXPS gives
// its second source when either is NaN, and the running maximum is that
// source.
func genMaxNum(s isa) {
	fr := text("maxNum"+s.name, "", []param{p("x", "*float32"), p("n", "int")}, f("m"))
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	emit("VMOVUPS %s, %s", c("neginf"), s.r(0))
	label("loop")
	emit("VMOVUPS (SI), %s", s.r(1))
	emit("VMAXPS %s, %s, %s", s.r(0), s.r(1), s.r(0))
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	reduceOp(s, 0, 1, "VMAXPS", "VMAXSS")
	emit("VMOVSS X0, %s", fr.mem("m"))
	ret()
}

func genMax(s isa) {
	fr := text("max"+s.name, "", []param{p("x", "*float32"), p("n", "int")}, f("m"))
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	emit("VMOVUPS (SI), %s", s.r(0))
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JE done")
	label("loop")
	emit("VMAXPS (SI), %s, %s", s.r(0), s.r(0))
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	reduceOp(s, 0, 1, "VMAXPS", "VMAXSS")
	emit("VMOVSS X0, %s", fr.mem("m"))
	ret()
}

// genSum returns the lane-tree sum of x[:n], or with dev of (x-mean)^2.
func genSum(s isa, dev bool) {
	name := "sum" + s.name
	args := []param{p("x", "*float32"), p("n", "int")}
	if dev {
		name = "sumSqDev" + s.name
		args = append(args, f("mean"))
	}
	fr := text(name, "", args, f("sum"))
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	if dev {
		emit("VBROADCASTSS %s, %s", fr.mem("mean"), s.r(5))
	}
	zero(s, 0)
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	if dev {
		emit("VMOVUPS (SI), %s", s.r(1))
		emit("VSUBPS %s, %s, %s", s.r(5), s.r(1), s.r(1))
		emit("VFMADD231PS %s, %s, %s", s.r(1), s.r(1), s.r(0))
	} else {
		emit("VADDPS (SI), %s, %s", s.r(0), s.r(0))
	}
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	reduce(s, 0, 1)
	emit("VMOVSS X0, %s", fr.mem("sum"))
	ret()
}

// genLNApply: out = ((x - mean) * rstd) * g + b.
func genLNApply(s isa) {
	fr := text("lnApply"+s.name, "", []param{p("out", "*float32"), p("x", "*float32"), p("gain", "*float32"), p("shift", "*float32"),
		p("n", "int"), f("mean"), f("rstd")})
	fr.arg("out", "DI")
	fr.arg("x", "SI")
	fr.arg("gain", "DX")
	fr.arg("shift", "BX")
	fr.arg("n", "CX")
	emit("VBROADCASTSS %s, %s", fr.mem("mean"), s.r(4))
	emit("VBROADCASTSS %s, %s", fr.mem("rstd"), s.r(5))
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	emit("VMOVUPS (SI), %s", s.r(0))
	emit("VSUBPS %s, %s, %s", s.r(4), s.r(0), s.r(0))
	emit("VMULPS %s, %s, %s", s.r(5), s.r(0), s.r(0))
	emit("VMULPS (DX), %s, %s", s.r(0), s.r(0))
	emit("VADDPS (BX), %s, %s", s.r(0), s.r(0))
	emit("VMOVUPS %s, (DI)", s.r(0))
	endLoop(s, "SI", "DX", "BX", "DI")
}

func genAdd(s isa) {
	fr := text("add"+s.name, "", []param{p("out", "*float32"), p("a", "*float32"), p("b", "*float32"), p("n", "int")})
	fr.arg("out", "DI")
	fr.arg("a", "SI")
	fr.arg("b", "DX")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	emit("VMOVUPS (SI), %s", s.r(0))
	emit("VADDPS (DX), %s, %s", s.r(0), s.r(0))
	emit("VMOVUPS %s, (DI)", s.r(0))
	endLoop(s, "SI", "DX", "DI")
}

// genAdamW: one AdamW step over n values (a multiple of the lane count),
// with the constants at c: gradScale, decay, 1-beta1, beta2, 1-beta2,
// 1/sqrt(1-beta2^t), eps, stepSize. The operations are kernels.adamWRef's,
// one by one in its order (no fused multiply-add), so that every path
// updates the weights to the same bits.
func genAdamW(s isa) {
	// ("g" would name Go assembly's goroutine register.)
	fr := text("adamW"+s.name, "", []param{p("param", "*float32"), p("grad", "*float32"), p("mom", "*float32"), p("vel", "*float32"),
		p("n", "int"), p("c", "*[8]float32")})
	fr.arg("param", "DI")
	fr.arg("grad", "SI")
	fr.arg("mom", "DX")
	fr.arg("vel", "BX")
	fr.arg("n", "CX")
	fr.arg("c", "AX")
	const gs, dec, c1, b2, c2, inv, eps, step = 8, 9, 10, 11, 12, 13, 14, 15
	for i := 0; i < 8; i++ {
		emit("VBROADCASTSS %d(AX), %s", 4*i, s.r(gs+i))
	}
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	emit("VMULPS (SI), %s, %s", s.r(gs), s.r(0))      // gj = g*gs
	emit("VMULPS (DI), %s, %s", s.r(dec), s.r(1))     // pj = p*d
	emit("VMOVUPS (DX), %s", s.r(2))                  // m
	emit("VSUBPS %s, %s, %s", s.r(2), s.r(0), s.r(3)) // gj - m
	emit("VMULPS %s, %s, %s", s.r(3), s.r(c1), s.r(3))
	emit("VADDPS %s, %s, %s", s.r(3), s.r(2), s.r(2))  // mj = m + c1*(gj-m)
	emit("VMULPS (BX), %s, %s", s.r(b2), s.r(4))       // v*b2
	emit("VMULPS %s, %s, %s", s.r(0), s.r(c2), s.r(5)) // c2*gj
	emit("VMULPS %s, %s, %s", s.r(0), s.r(5), s.r(5))  // *gj
	emit("VADDPS %s, %s, %s", s.r(5), s.r(4), s.r(4))  // vj
	emit("VMOVUPS %s, (DX)", s.r(2))
	emit("VMOVUPS %s, (BX)", s.r(4))
	emit("VSQRTPS %s, %s", s.r(4), s.r(6))
	emit("VMULPS %s, %s, %s", s.r(inv), s.r(6), s.r(6))
	emit("VADDPS %s, %s, %s", s.r(eps), s.r(6), s.r(6)) // denom
	emit("VDIVPS %s, %s, %s", s.r(6), s.r(2), s.r(7))   // mj/denom
	emit("VMULPS %s, %s, %s", s.r(7), s.r(step), s.r(7))
	emit("VSUBPS %s, %s, %s", s.r(7), s.r(1), s.r(1)) // pj - step*q
	emit("VMOVUPS %s, (DI)", s.r(1))
	endLoop(s, "DI", "SI", "DX", "BX")
}

// endLoop ends the vector loop of an elementwise kernel: it advances each
// pointer register by a vector, counts a vector's lanes off CX, loops, and
// returns.
func endLoop(s isa, ptrs ...string) {
	for _, r := range ptrs {
		emit("ADDQ $%d, %s", s.vbytes(), r)
	}
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	ret()
}

func genScale(s isa) {
	fr := text("scale"+s.name, "", []param{p("x", "*float32"), p("n", "int"), f("a")})
	fr.arg("x", "SI")
	fr.arg("n", "CX")
	emit("VBROADCASTSS %s, %s", fr.mem("a"), s.r(1))
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	emit("VMULPS (SI), %s, %s", s.r(1), s.r(0))
	emit("VMOVUPS %s, (SI)", s.r(0))
	emit("ADDQ $%d, SI", s.vbytes())
	emit("SUBQ $%d, CX", s.lanes)
	emit("JNZ loop")
	label("done")
	ret()
}

// ---------------------------------------------------------------------------
// Attention.

// genAttnAccum: o[:u*lanes] = sum over p < n, in order, of (a[p]*inv) *
// v[p*ldv : ...], by fused multiply-adds from zero. n > 0.
func genAttnAccum(s isa, u int) {
	fr := text(fmt.Sprintf("attnAccum%d%s", u, s.name), "", []param{p("o", "*float32"), p("a", "*float32"), p("n", "int"),
		p("v", "*float32"), p("ldv", "int"), f("inv")})
	fr.arg("o", "DI")
	fr.arg("a", "SI")
	fr.arg("n", "CX")
	fr.arg("v", "DX")
	fr.arg("ldv", "R8")
	emit("VBROADCASTSS %s, %s", fr.mem("inv"), s.r(5))
	for i := 0; i < u; i++ {
		zero(s, i)
	}
	label("loop")
	emit("VBROADCASTSS (SI), %s", s.r(4))
	emit("VMULPS %s, %s, %s", s.r(5), s.r(4), s.r(4))
	for i := 0; i < u; i++ {
		emit("VFMADD231PS %d(DX), %s, %s", i*s.vbytes(), s.r(4), s.r(i))
	}
	emit("ADDQ $4, SI")
	emit("ADDQ R8, DX")
	emit("DECQ CX")
	emit("JNZ loop")
	for i := 0; i < u; i++ {
		emit("VMOVUPS %s, %d(DI)", s.r(i), i*s.vbytes())
	}
	ret()
}

// ---------------------------------------------------------------------------
// Machine ceilings.

// ceilingAhead is how far ahead of its loads the copy and read loops
// fetch into L2: measured here, a copy that fetches 4 KiB ahead moves
// ~18% more than one that leaves it to the hardware (44 vs 37 GB/s), a
// read ~5% more. A ceiling is the most the machine does.
const ceilingAhead = 4096

// ahead emits one PREFETCHT1 per cache line of the 4 vectors
// ceilingAhead bytes past SI (a prefetch never faults past the end).
func ahead(s isa) {
	for off := 0; off < 4*s.vbytes(); off += 64 {
		emit("PREFETCHT1 %d(SI)", ceilingAhead+off)
	}
}

// genCopy copies n bytes (a multiple of 4 vectors; dst aligned to a vector)
// with non-temporal stores, which bypass the caches as a large copy should.
func genCopy(s isa) {
	fr := text("copyNT"+s.name, "", []param{p("dst", "unsafe.Pointer"), p("src", "unsafe.Pointer"), p("n", "int")})
	fr.arg("dst", "DI")
	fr.arg("src", "SI")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	ahead(s)
	for v := 0; v < 4; v++ {
		emit("VMOVUPS %d(SI), %s", v*s.vbytes(), s.r(v))
	}
	for v := 0; v < 4; v++ {
		emit("VMOVNTPS %s, %d(DI)", s.r(v), v*s.vbytes())
	}
	emit("ADDQ $%d, SI", 4*s.vbytes())
	emit("ADDQ $%d, DI", 4*s.vbytes())
	emit("SUBQ $%d, CX", 4*s.vbytes())
	emit("JNZ loop")
	emit("SFENCE")
	label("done")
	ret()
}

// genRead sums n bytes of float32 (a multiple of 4 vectors), to measure
// read bandwidth; the sum keeps the loads from being dead.
func genRead(s isa) {
	fr := text("readSum"+s.name, "", []param{p("src", "unsafe.Pointer"), p("n", "int")}, f("sum"))
	fr.arg("src", "SI")
	fr.arg("n", "CX")
	for v := 0; v < 4; v++ {
		zero(s, v)
	}
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	ahead(s)
	for v := 0; v < 4; v++ {
		emit("VADDPS %d(SI), %s, %s", v*s.vbytes(), s.r(v), s.r(v))
	}
	emit("ADDQ $%d, SI", 4*s.vbytes())
	emit("SUBQ $%d, CX", 4*s.vbytes())
	emit("JNZ loop")
	label("done")
	emit("VADDPS %s, %s, %s", s.r(1), s.r(0), s.r(0))
	emit("VADDPS %s, %s, %s", s.r(3), s.r(2), s.r(2))
	emit("VADDPS %s, %s, %s", s.r(2), s.r(0), s.r(0))
	reduce(s, 0, 1)
	emit("VMOVSS X0, %s", fr.mem("sum"))
	ret()
}

// genPrefetch asks for the n bytes at p (a multiple of 256) to be fetched
// into the cache, one PREFETCHT1 per line. It needs no vector registers.
// p is a number, not a pointer: what it points to need not be live.
func genPrefetch() {
	fr := text("prefetchT1", "", []param{p("p", "uintptr"), p("n", "int")})
	fr.arg("p", "SI")
	fr.arg("n", "CX")
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	for off := 0; off < 256; off += 64 {
		emit("PREFETCHT1 %d(SI)", off)
	}
	emit("ADDQ $256, SI")
	emit("SUBQ $256, CX")
	emit("JNZ loop")
	label("done")
	emit("RET")
}

// genFMA runs n iterations of independent fused multiply-add chains, as
// many as keep both FMA pipes busy through their latency.
func genFMA(s isa) int {
	chains := 24
	if s.lanes == 8 {
		chains = 12
	}
	fr := text("fmaLoop"+s.name, "", []param{p("n", "int")})
	fr.arg("n", "CX")
	a, b := chains, chains+1
	for i := 0; i < chains+2; i++ {
		zero(s, i)
	}
	emit("TESTQ CX, CX")
	emit("JE done")
	label("loop")
	for i := 0; i < chains; i++ {
		emit("VFMADD231PS %s, %s, %s", s.r(a), s.r(b), s.r(i))
	}
	emit("DECQ CX")
	emit("JNZ loop")
	label("done")
	ret()
	return chains
}

func main() {
	asmOut := flag.String("asm", "simd_amd64.s", "assembly output")
	declOut := flag.String("decl", "simd_decl_amd64.go", "declarations output")
	flag.Parse()

	fmt.Fprintf(&asm, "// Code generated by kernels/internal/asmgen; DO NOT EDIT.\n\n//go:build amd64 && !purego\n\n#include \"textflag.h\"\n\n")
	genConsts()
	genPrefetch()
	var geo bytes.Buffer
	for _, s := range []isa{avx2, avx512} {
		for _, dt := range []dtype{f32, f16, bf16, q8} {
			genAxpy(s, dt)
			if dt == q8 {
				continue // q8_0 dot products are in integers (genDotQ8Q8)
			}
			genDot(s, dt)
			if dt != f32 {
				genConvert(s, dt)
			}
		}
		genQuantQ8(s)
		genDotQ8Q8(s, 1)
		if s.lanes == 16 {
			genDotQ8Q8(s, q8TileMX)
		}
		tmr, tnr := genDotTile(s, f32)
		genDotTile(s, f16)
		genDotTile(s, bf16)
		emr := 0
		if s.lanes == 16 {
			for _, dt := range []dtype{f32, f16, bf16} {
				emr = genDotTileEdge(s, dt)
			}
		}
		gmr, gnr := genGemm(s)
		for _, dt := range []dtype{f32, f16, bf16, q8} {
			genPack(s, dt, gnr)
		}
		genGemmQ8(s)
		for _, dt := range []dtype{f32, f16, bf16} {
			genGemmDirect(s, dt)
		}
		genGelu(s)
		genGeluBackward(s)
		genExpSum(s)
		genMax(s)
		genMaxNum(s)
		genSum(s, false)
		genSum(s, true)
		genLNApply(s)
		genAdd(s)
		genScale(s)
		genAdamW(s)
		genAttnAccum(s, 4)
		genAttnAccum(s, 2)
		genAttnAccum(s, 1)
		genCopy(s)
		genRead(s)
		chains := genFMA(s)
		fmt.Fprintf(&geo, "\t%sLanes = %d\n\t%sTileMR = %d\n\t%sTileNR = %d\n\t%sGemmMR = %d\n\t%sGemmNR = %d\n\t%sFMAChains = %d\n",
			strings.ToLower(s.name), s.lanes, strings.ToLower(s.name), tmr, strings.ToLower(s.name), tnr,
			strings.ToLower(s.name), gmr, strings.ToLower(s.name), gnr, strings.ToLower(s.name), chains)
		if emr > 0 {
			fmt.Fprintf(&geo, "\t%sTileEdgeMR = %d\n", strings.ToLower(s.name), emr)
		}
		if s.lanes == 16 {
			fmt.Fprintf(&geo, "\t%sQ8TileMX = %d\n", strings.ToLower(s.name), q8TileMX)
		}
	}

	src := "// Code generated by kernels/internal/asmgen; DO NOT EDIT.\n\n//go:build amd64 && !purego\n\npackage kernels\n\nimport \"unsafe\"\n\n" +
		"// Shapes of the generated kernels.\nconst (\n" + geo.String() + ")\n" + decl.String()
	formatted, err := format.Source([]byte(src))
	if err != nil {
		log.Fatalf("format declarations: %v", err)
	}
	if err := os.WriteFile(*asmOut, asm.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*declOut, formatted, 0o644); err != nil {
		log.Fatal(err)
	}
}
