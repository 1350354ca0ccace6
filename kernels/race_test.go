//go:build race

package kernels

// raceEnabled reports a -race build, in which sync.Pool drops items at
// random, so allocation counts mean nothing.
const raceEnabled = true
