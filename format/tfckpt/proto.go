package tfckpt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// This file is a minimal protocol-buffer wire-format decoder, enough for
// the bundle's header and entry messages. Every read is bounds-checked.

type wireType uint8

const (
	wireVarint  wireType = 0
	wireFixed64 wireType = 1
	wireBytes   wireType = 2
	wireFixed32 wireType = 5
)

var errTruncated = errors.New("truncated message")

// protoReader reads fields from one serialized message.
type protoReader struct{ b []byte }

func (r *protoReader) more() bool { return len(r.b) > 0 }

// field reads a field key.
func (r *protoReader) field() (num uint64, wt wireType, err error) {
	k, err := r.varint()
	if err != nil {
		return 0, 0, err
	}
	num, wt = k>>3, wireType(k&7)
	if num == 0 || num > 1<<29-1 {
		return 0, 0, fmt.Errorf("invalid field number %d", num)
	}
	return num, wt, nil
}

func (r *protoReader) varint() (uint64, error) {
	v, n := binary.Uvarint(r.b)
	switch {
	case n == 0:
		return 0, errTruncated
	case n < 0:
		return 0, errors.New("varint overflows 64 bits")
	}
	r.b = r.b[n:]
	return v, nil
}

func (r *protoReader) fixed32() (uint32, error) {
	if len(r.b) < 4 {
		return 0, errTruncated
	}
	v := binary.LittleEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v, nil
}

func (r *protoReader) bytes() ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, errTruncated
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v, nil
}

// skip skips the value of a field of wire type wt.
func (r *protoReader) skip(wt wireType) error {
	var n int
	switch wt {
	case wireVarint:
		_, err := r.varint()
		return err
	case wireBytes:
		_, err := r.bytes()
		return err
	case wireFixed64:
		n = 8
	case wireFixed32:
		n = 4
	default:
		// Groups (3, 4) are long deprecated and never appear in bundles.
		return fmt.Errorf("unsupported wire type %d", wt)
	}
	if len(r.b) < n {
		return errTruncated
	}
	r.b = r.b[n:]
	return nil
}

// int32Value reads a varint-encoded int32 (negative values are sign-extended
// to 64 bits on the wire).
func (r *protoReader) int32Value() (int32, error) {
	v, err := r.varint()
	if err != nil {
		return 0, err
	}
	if x := int64(v); x < math.MinInt32 || x > math.MaxInt32 {
		return 0, fmt.Errorf("value %d out of int32 range", x)
	}
	return int32(v), nil
}

func (r *protoReader) int64Value() (int64, error) {
	v, err := r.varint()
	return int64(v), err
}

func checkWire(num uint64, got, want wireType) error {
	if got != want {
		return fmt.Errorf("field %d has wire type %d, want %d", num, got, want)
	}
	return nil
}
