//go:build !(aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris)

package mmap

import (
	"fmt"
	"os"
)

// Open reads the file at path into memory; this platform has no mmap
// support in golang.org/x/sys/unix.
func Open(path string) (*Mapping, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if err := checkSize(fi.Size()); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return &Mapping{data: data}, nil
}

func unmap([]byte) error { return nil }
