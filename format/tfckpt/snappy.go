package tfckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// maxSnappyRatio bounds the decoded length a snappy block may claim
// relative to its compressed length, so that a corrupt header cannot make
// us allocate much more than the file. The densest snappy element is a
// 3-byte copy of 64 bytes, so valid data never expands more than 22 times.
const maxSnappyRatio = 24

// snappyDecode decodes a block in the snappy format (not the framing
// format), as LevelDB writes it.
func snappyDecode(src []byte) ([]byte, error) {
	n, k := binary.Uvarint(src)
	if k <= 0 || n > 1<<32-1 {
		return nil, errors.New("snappy: bad length header")
	}
	if n > uint64(len(src))*maxSnappyRatio {
		return nil, fmt.Errorf("snappy: decoded length %d is impossible for %d bytes of input", n, len(src))
	}
	dst := make([]byte, n)
	d, s := 0, k
	for s < len(src) {
		tag := src[s]
		var length, offset int
		switch tag & 3 {
		case 0: // literal
			l := uint64(tag >> 2)
			s++
			if l >= 60 {
				// The length-1 follows in l-59 little-endian bytes.
				nb := int(l - 59)
				if len(src)-s < nb {
					return nil, errors.New("snappy: truncated literal length")
				}
				l = 0
				for i := nb - 1; i >= 0; i-- {
					l = l<<8 | uint64(src[s+i])
				}
				s += nb
			}
			l++
			if l > uint64(len(src)-s) {
				return nil, errors.New("snappy: truncated literal")
			}
			if l > uint64(len(dst)-d) {
				return nil, errors.New("snappy: literal overflows the decoded length")
			}
			d += copy(dst[d:], src[s:s+int(l)])
			s += int(l)
			continue
		case 1: // copy with a 1-byte offset
			if len(src)-s < 2 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 4 + int(tag>>2)&7
			offset = int(tag&0xe0)<<3 | int(src[s+1])
			s += 2
		case 2: // copy with a 2-byte offset
			if len(src)-s < 3 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint16(src[s+1:]))
			s += 3
		case 3: // copy with a 4-byte offset
			if len(src)-s < 5 {
				return nil, errors.New("snappy: truncated copy")
			}
			length = 1 + int(tag>>2)
			offset = int(binary.LittleEndian.Uint32(src[s+1:]))
			s += 5
		}
		if offset <= 0 || offset > d {
			return nil, fmt.Errorf("snappy: copy offset %d at output position %d", offset, d)
		}
		if length > len(dst)-d {
			return nil, errors.New("snappy: copy overflows the decoded length")
		}
		// Byte by byte: source and destination overlap when offset < length,
		// which is how snappy encodes runs.
		for i := range length {
			dst[d+i] = dst[d-offset+i]
		}
		d += length
	}
	if d != len(dst) {
		return nil, fmt.Errorf("snappy: decoded %d bytes, header says %d", d, len(dst))
	}
	return dst, nil
}
