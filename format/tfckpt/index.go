package tfckpt

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// DType is a tensor element type, spelled as in safetensors.
type DType string

// Element types. String tensors are listed in indexes (TensorFlow 2 keeps
// its object graph in one) but their data cannot be read.
const (
	F32    DType = "F32"
	F64    DType = "F64"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I8     DType = "I8"
	I16    DType = "I16"
	I32    DType = "I32"
	I64    DType = "I64"
	U8     DType = "U8"
	U16    DType = "U16"
	U32    DType = "U32"
	U64    DType = "U64"
	Bool   DType = "BOOL"
	String DType = "STRING"
)

// Size returns the size of one element in bytes, or 0 for String (whose
// elements vary in size) and unknown types.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case I8, U8, Bool:
		return 1
	}
	return 0
}

// dtypes maps TensorFlow's DataType enum (tensorflow/core/framework/
// types.proto) to DType.
var dtypes = map[uint64]DType{
	1:  F32,    // DT_FLOAT
	2:  F64,    // DT_DOUBLE
	3:  I32,    // DT_INT32
	4:  U8,     // DT_UINT8
	5:  I16,    // DT_INT16
	6:  I8,     // DT_INT8
	7:  String, // DT_STRING
	9:  I64,    // DT_INT64
	10: Bool,   // DT_BOOL
	14: BF16,   // DT_BFLOAT16
	17: U16,    // DT_UINT16
	19: F16,    // DT_HALF
	22: U32,    // DT_UINT32
	23: U64,    // DT_UINT64
}

// Entry describes one tensor in a bundle.
type Entry struct {
	Name  string
	DType DType
	Shape []int
	// Shard is the index of the data file holding the tensor.
	Shard int
	// Offset and Size locate the tensor's bytes in its data file.
	Offset, Size int64
	// CRC32C is the masked CRC-32C (Castagnoli) of those bytes.
	CRC32C uint32
}

// NumElements returns the number of elements, the product of Shape.
func (e Entry) NumElements() int {
	n := 1
	for _, d := range e.Shape {
		n *= d // cannot overflow for numeric types: validated against Size
	}
	return n
}

// bundleHeader is the BundleHeaderProto stored under the empty key.
type bundleHeader struct {
	numShards int32
}

const (
	// tensorBundleVersion is the format version this reader implements,
	// TensorFlow's kTensorBundleVersion.
	tensorBundleVersion = 1
	// maxRank is TensorFlow's TensorShape::MaxDimensions().
	maxRank = 254
)

// ParseIndex parses and validates a bundle's index file (the LevelDB table
// at prefix.index) and returns its tensor entries sorted by name.
func ParseIndex(data []byte) ([]Entry, error) {
	_, entries, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("tfckpt: index: %w", err)
	}
	return entries, nil
}

func parseIndex(data []byte) (bundleHeader, []Entry, error) {
	var (
		hdr     bundleHeader
		entries []Entry
		seenHdr bool
	)
	err := readTable(data, func(key, value []byte) error {
		if len(key) == 0 {
			// The empty key sorts first, so the header precedes all entries.
			h, err := decodeHeader(value)
			if err != nil {
				return fmt.Errorf("bundle header: %w", err)
			}
			hdr, seenHdr = h, true
			return nil
		}
		name := string(key)
		if !seenHdr {
			return invalidf("tensor %q: no bundle header before the first tensor", name)
		}
		e, err := decodeEntry(value)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		if e.Shard >= int(hdr.numShards) {
			return invalidf("tensor %q: shard %d, but the bundle has %d", name, e.Shard, hdr.numShards)
		}
		e.Name = name
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return bundleHeader{}, nil, err
	}
	if !seenHdr {
		return bundleHeader{}, nil, invalidf("no bundle header")
	}
	return hdr, entries, nil
}

// decodeHeader decodes a BundleHeaderProto: num_shards (1), endianness (2)
// and version (3, a VersionDef).
func decodeHeader(b []byte) (bundleHeader, error) {
	var h bundleHeader
	r := protoReader{b}
	for r.more() {
		num, wt, err := r.field()
		if err != nil {
			return h, invalid(err)
		}
		switch num {
		case 1:
			if err := checkWire(num, wt, wireVarint); err != nil {
				return h, invalid(err)
			}
			if h.numShards, err = r.int32Value(); err != nil {
				return h, invalidf("num_shards: %v", err)
			}
		case 2:
			if err := checkWire(num, wt, wireVarint); err != nil {
				return h, invalid(err)
			}
			endianness, err := r.varint()
			if err != nil {
				return h, invalidf("endianness: %v", err)
			}
			if endianness != 0 {
				return h, invalidf("big-endian bundles are not supported")
			}
		case 3:
			if err := checkWire(num, wt, wireBytes); err != nil {
				return h, invalid(err)
			}
			v, err := r.bytes()
			if err != nil {
				return h, invalidf("version: %v", err)
			}
			if err := checkVersion(v); err != nil {
				return h, err
			}
		default:
			if err := r.skip(wt); err != nil {
				return h, invalid(err)
			}
		}
	}
	if h.numShards < 1 {
		return h, invalidf("num_shards is %d", h.numShards)
	}
	return h, nil
}

// checkVersion applies TensorFlow's rules to a VersionDef: producer (1),
// min_consumer (2) and bad_consumers (3, repeated).
func checkVersion(b []byte) error {
	r := protoReader{b}
	for r.more() {
		num, wt, err := r.field()
		if err != nil {
			return invalidf("version: %v", err)
		}
		switch {
		case num == 2 && wt == wireVarint:
			min, err := r.int32Value()
			if err != nil {
				return invalidf("version: min_consumer: %v", err)
			}
			if min > tensorBundleVersion {
				return invalidf("bundle needs a reader of version %d or later; this is version %d", min, tensorBundleVersion)
			}
		case num == 3 && wt == wireVarint:
			v, err := r.int32Value()
			if err != nil {
				return invalidf("version: bad_consumers: %v", err)
			}
			if v == tensorBundleVersion {
				return invalidf("bundle disallows readers of version %d", v)
			}
		case num == 3 && wt == wireBytes: // packed
			packed, err := r.bytes()
			if err != nil {
				return invalidf("version: bad_consumers: %v", err)
			}
			for pr := (protoReader{packed}); pr.more(); {
				v, err := pr.int32Value()
				if err != nil {
					return invalidf("version: bad_consumers: %v", err)
				}
				if v == tensorBundleVersion {
					return invalidf("bundle disallows readers of version %d", v)
				}
			}
		default:
			if err := r.skip(wt); err != nil {
				return invalidf("version: %v", err)
			}
		}
	}
	return nil
}

// decodeEntry decodes and validates a BundleEntryProto: dtype (1), shape
// (2), shard_id (3), offset (4), size (5), crc32c (6) and slices (7).
func decodeEntry(b []byte) (Entry, error) {
	var (
		e     Entry
		dtype uint64
		shape []int64 // an absent shape is a scalar, as in TensorFlow
	)
	r := protoReader{b}
	for r.more() {
		num, wt, err := r.field()
		if err != nil {
			return e, invalid(err)
		}
		want := wireVarint
		switch num {
		case 2, 7:
			want = wireBytes
		case 6:
			want = wireFixed32
		}
		if num <= 7 {
			if err := checkWire(num, wt, want); err != nil {
				return e, invalid(err)
			}
		}
		switch num {
		case 1:
			dtype, err = r.varint()
		case 2:
			var s []byte
			if s, err = r.bytes(); err == nil {
				// Repeated occurrences of a message field merge, which for
				// a shape means appending dimensions.
				shape, err = decodeShape(s, shape)
			}
		case 3:
			var shard int32
			shard, err = r.int32Value()
			e.Shard = int(shard)
		case 4:
			e.Offset, err = r.int64Value()
		case 5:
			e.Size, err = r.int64Value()
		case 6:
			e.CRC32C, err = r.fixed32()
		case 7:
			return e, invalidf("partitioned (sliced) tensors are not supported")
		default:
			err = r.skip(wt)
		}
		if err != nil {
			return e, invalidf("field %d: %v", num, err)
		}
	}
	dt, ok := dtypes[dtype]
	if !ok {
		return e, invalidf("unsupported dtype %d", dtype)
	}
	e.DType = dt
	switch {
	case e.Shard < 0:
		return e, invalidf("negative shard_id %d", e.Shard)
	case e.Offset < 0 || e.Size < 0 || e.Offset > math.MaxInt64-e.Size:
		return e, invalidf("bad offset %d and size %d", e.Offset, e.Size)
	}
	if dt != String {
		size, ok := byteSize(shape, int64(dt.Size()))
		if !ok || size != e.Size {
			return e, invalidf("shape %v of %s needs %s bytes, but size is %d", shape, dt, sizeString(size, ok), e.Size)
		}
	}
	e.Shape = make([]int, len(shape))
	for i, d := range shape {
		if uint64(d) > math.MaxInt {
			return e, invalidf("dimension %d of shape %v too large for this platform", d, shape)
		}
		e.Shape[i] = int(d)
	}
	return e, nil
}

// decodeShape decodes a TensorShapeProto, appending its dimensions to dims:
// dim (2, repeated Dim{size (1), name (2)}) and unknown_rank (3).
func decodeShape(b []byte, dims []int64) ([]int64, error) {
	r := protoReader{b}
	for r.more() {
		num, wt, err := r.field()
		if err != nil {
			return nil, err
		}
		switch {
		case num == 2 && wt == wireBytes:
			db, err := r.bytes()
			if err != nil {
				return nil, err
			}
			size, err := decodeDim(db)
			if err != nil {
				return nil, err
			}
			if len(dims) == maxRank {
				return nil, fmt.Errorf("shape has more than %d dimensions", maxRank)
			}
			dims = append(dims, size)
		case num == 3 && wt == wireVarint:
			unknown, err := r.varint()
			if err != nil {
				return nil, err
			}
			if unknown != 0 {
				return nil, errors.New("shape has unknown rank")
			}
		default:
			if err := r.skip(wt); err != nil {
				return nil, err
			}
		}
	}
	return dims, nil
}

func decodeDim(b []byte) (int64, error) {
	var size int64
	r := protoReader{b}
	for r.more() {
		num, wt, err := r.field()
		if err != nil {
			return 0, err
		}
		if num == 1 && wt == wireVarint {
			if size, err = r.int64Value(); err != nil {
				return 0, err
			}
			continue
		}
		if err := r.skip(wt); err != nil {
			return 0, err
		}
	}
	if size < 0 {
		return 0, fmt.Errorf("shape has an unknown or negative dimension (%d)", size)
	}
	return size, nil
}

// byteSize returns elem times the product of shape, or false if that
// overflows int64. All dims must be non-negative.
func byteSize(shape []int64, elem int64) (int64, bool) {
	if slices.Contains(shape, 0) {
		return 0, true
	}
	n := elem
	for _, d := range shape {
		if d > math.MaxInt64/n {
			return 0, false
		}
		n *= d
	}
	return n, true
}

func sizeString(n int64, ok bool) string {
	if !ok {
		return "more than 2^63"
	}
	return fmt.Sprint(n)
}
