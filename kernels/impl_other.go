//go:build !amd64 || purego

package kernels

// simdImpls returns no SIMD implementation: only amd64 has assembly.
func simdImpls() []*impl { return nil }

// expPadded is never called without SIMD kernels.
func expPadded(im *impl, pad *[16]float32, m float32) { panic("kernels: no SIMD kernels") }
