//go:build !(darwin || dragonfly || freebsd || linux || netbsd || openbsd)

package progress

import "os"

func isTerminal(*os.File) bool { return false }
