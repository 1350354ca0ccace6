//go:build !purego

package kernels

//go:generate go run ./internal/asmgen

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

// simdImpls returns the SIMD implementations this CPU supports. AVX-512
// needs F (the instructions), BW and VL (the 8- and 16-bit moves and the
// 256-bit forms of EVEX instructions) and DQ; AVX2 needs FMA and F16C too.
func simdImpls() []*impl {
	var out []*impl
	if cpu.X86.HasAVX2 && cpu.X86.HasFMA && cpu.X86.HasF16C {
		out = append(out, &impl{
			name: "avx2", simd: true, lanes: avx2Lanes,
			axpy:    [4]func(y, x *float32, w unsafe.Pointer, ldw, k, n int, s *float32, lds int){axpyF32AVX2, axpyF16AVX2, axpyBF16AVX2, axpyQ8AVX2},
			dot:     [4]func(out, x *float32, w unsafe.Pointer, ldw, k, rows int, s *float32, lds int){dotF32AVX2, dotF16AVX2, dotBF16AVX2, nil},
			cvt:     [4]func(dst *float32, src unsafe.Pointer, n int){F16: cvtF16AVX2, BF16: cvtBF16AVX2},
			dotQ8Q8: dotQ8Q8x1AVX2, quantQ8: quantQ8AVX2, prefetch: prefetchT1,
			dotTile: [4]func(out *float32, ldo int, x *float32, ldx int, w unsafe.Pointer, ldw, k, tiles int, pf unsafe.Pointer, pfs int){dotTileF32AVX2, dotTileF16AVX2, dotTileBF16AVX2, nil}, tileMR: avx2TileMR, tileNR: avx2TileNR,
			gemm: gemmAVX2, pack: [4]func(dst *float32, src unsafe.Pointer, panels, ldd int){packF32AVX2, packF16AVX2, packBF16AVX2, packQ8AVX2}, gemmMR: avx2GemmMR, gemmNR: avx2GemmNR, gemmKC: 256,
			gemmQ8: gemmQ8AVX2, gemmDirect: [4]func(kc int, a *float32, lda int, b unsafe.Pointer, ldb int, c *float32, ldc int, bias *float32){gemmDirectF32AVX2, gemmDirectF16AVX2, gemmDirectBF16AVX2, nil},
			gelu: geluAVX2, geluBack: geluBackwardAVX2, expSum: expSumAVX2, max: maxAVX2, maxNum: maxNumAVX2, sum: sumAVX2, sumSqDev: sumSqDevAVX2,
			lnApply: lnApplyAVX2, add: addAVX2, scale: scaleAVX2, adamW: adamWAVX2,
			attnAccum4: attnAccum4AVX2, attnAccum2: attnAccum2AVX2, attnAccum1: attnAccum1AVX2,
			copyNT: copyNTAVX2, readSum: readSumAVX2, fmaLoop: fmaLoopAVX2, fmaOps: 2 * avx2Lanes * avx2FMAChains,
		})
	}
	if len(out) > 0 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512DQ {
		out = append(out, &impl{
			name: "avx512", simd: true, lanes: avx512Lanes,
			axpy:    [4]func(y, x *float32, w unsafe.Pointer, ldw, k, n int, s *float32, lds int){axpyF32AVX512, axpyF16AVX512, axpyBF16AVX512, axpyQ8AVX512},
			dot:     [4]func(out, x *float32, w unsafe.Pointer, ldw, k, rows int, s *float32, lds int){dotF32AVX512, dotF16AVX512, dotBF16AVX512, nil},
			cvt:     [4]func(dst *float32, src unsafe.Pointer, n int){F16: cvtF16AVX512, BF16: cvtBF16AVX512},
			dotQ8Q8: dotQ8Q8x1AVX512, quantQ8: quantQ8AVX512, prefetch: prefetchT1, dotQ8Q8Tile: dotQ8Q8x3AVX512, q8TileMX: avx512Q8TileMX,
			dotTile: [4]func(out *float32, ldo int, x *float32, ldx int, w unsafe.Pointer, ldw, k, tiles int, pf unsafe.Pointer, pfs int){dotTileF32AVX512, dotTileF16AVX512, dotTileBF16AVX512, nil}, tileMR: avx512TileMR, tileNR: avx512TileNR,
			dotTileEdge: [4]func(out *float32, ldo int, x *float32, ldx int, w unsafe.Pointer, ldw, k, tiles int, pf unsafe.Pointer, pfs int){dotTileEdgeF32AVX512, dotTileEdgeF16AVX512, dotTileEdgeBF16AVX512, nil}, tileEdgeMR: avx512TileEdgeMR,
			gemm: gemmAVX512, pack: [4]func(dst *float32, src unsafe.Pointer, panels, ldd int){packF32AVX512, packF16AVX512, packBF16AVX512, packQ8AVX512}, gemmMR: avx512GemmMR, gemmNR: avx512GemmNR, gemmKC: 128,
			gemmQ8: gemmQ8AVX512, gemmDirect: [4]func(kc int, a *float32, lda int, b unsafe.Pointer, ldb int, c *float32, ldc int, bias *float32){gemmDirectF32AVX512, gemmDirectF16AVX512, gemmDirectBF16AVX512, nil},
			gelu: geluAVX512, geluBack: geluBackwardAVX512, expSum: expSumAVX512, max: maxAVX512, maxNum: maxNumAVX512, sum: sumAVX512, sumSqDev: sumSqDevAVX512,
			lnApply: lnApplyAVX512, add: addAVX512, scale: scaleAVX512, adamW: adamWAVX512,
			attnAccum4: attnAccum4AVX512, attnAccum2: attnAccum2AVX512, attnAccum1: attnAccum1AVX512,
			copyNT: copyNTAVX512, readSum: readSumAVX512, fmaLoop: fmaLoopAVX512, fmaOps: 2 * avx512Lanes * avx512FMAChains,
		})
	}
	if len(out) == 2 && !cpu.X86.HasAVX512VNNI {
		// The AVX2 kernel's integer products need no VNNI.
		out[1].dotQ8Q8, out[1].dotQ8Q8Tile, out[1].q8TileMX = dotQ8Q8x1AVX2, nil, 0
	}
	return out
}

// expPadded sets pad[i] = exp(pad[i] - m) with im's vector kernel. It calls
// the kernel directly, not through im, so that pad can stay on the
// caller's stack: the compiler cannot see that a function value does not
// keep its argument.
func expPadded(im *impl, pad *[16]float32, m float32) {
	if im.lanes == avx512Lanes {
		expSumAVX512(&pad[0], avx512Lanes, m)
	} else {
		expSumAVX2(&pad[0], avx2Lanes, m)
	}
}
