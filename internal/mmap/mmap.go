// Package mmap maps whole files into memory read-only, so that model
// weights can be used in place without copying them onto the Go heap.
// Where memory mapping is not available the file is read into memory
// instead, behind the same API.
package mmap

import (
	"fmt"
	"math"
)

// Mapping is a file's contents in memory.
type Mapping struct {
	data   []byte
	mapped bool // data comes from mmap and must be unmapped
}

// Data returns the file's contents. The slice is read-only when mapped:
// writing to it faults. It is invalid after Close.
func (m *Mapping) Data() []byte { return m.data }

// Close releases the mapping. It is safe to call more than once.
func (m *Mapping) Close() error {
	if m == nil || m.data == nil {
		return nil
	}
	data, mapped := m.data, m.mapped
	m.data, m.mapped = nil, false
	if mapped {
		return unmap(data)
	}
	return nil
}

func checkSize(size int64) error {
	if size < 0 || uint64(size) > math.MaxInt {
		return fmt.Errorf("file size %d does not fit in memory on this platform", size)
	}
	return nil
}
