//go:build !amd64 || purego

package kernels

// simdImpls returns no SIMD implementation: only amd64 has assembly.
func simdImpls() []*impl { return nil }
