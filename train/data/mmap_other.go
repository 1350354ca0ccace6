//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package data

import "os"

func mapFile(f *os.File, size int64) ([]byte, func() error, bool) { return nil, nil, false }
