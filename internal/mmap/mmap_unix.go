//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package mmap

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Open maps the file at path read-only. Errors are *os.PathError or
// mention the path.
func Open(path string) (*Mapping, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	// The mapping outlives the descriptor, so it can be closed right away.
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	size := fi.Size()
	if err := checkSize(size); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if size == 0 {
		// mmap rejects empty lengths; an empty file needs no mapping.
		return &Mapping{data: []byte{}}, nil
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var data []byte
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = unix.Mmap(int(fd), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	}); err != nil {
		return nil, err
	}
	if merr != nil {
		return nil, &os.PathError{Op: "mmap", Path: path, Err: merr}
	}
	return &Mapping{data: data, mapped: true}, nil
}

func unmap(b []byte) error {
	return unix.Munmap(b)
}
