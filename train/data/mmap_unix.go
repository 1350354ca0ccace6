//go:build aix || darwin || dragonfly || freebsd || linux || netbsd || openbsd || solaris

package data

import (
	"os"

	"golang.org/x/sys/unix"
)

// mapFile maps size bytes of f read-only. ok is false when mapping is not
// possible, in which case the caller reads the file instead.
func mapFile(f *os.File, size int64) (data []byte, unmap func() error, ok bool) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, false
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, nil, false
	}
	var merr error
	if err := rc.Control(func(fd uintptr) {
		data, merr = unix.Mmap(int(fd), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	}); err != nil || merr != nil {
		return nil, nil, false
	}
	return data, func() error { return unix.Munmap(data) }, true
}
