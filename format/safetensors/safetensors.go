// Package safetensors reads and writes the safetensors model-file format
// (https://github.com/huggingface/safetensors).
//
// A file is an 8-byte little-endian header length N, N bytes of JSON
// describing each tensor (dtype, shape, byte range), and a data buffer that
// the byte ranges index into. Open maps the file read-only and hands out
// views of the mapping, so loading a model copies nothing; every field of
// the header is validated first, and nothing is allocated on the strength
// of a size the header claims.
package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"sort"
	"unicode/utf8"

	"github.com/gpt2go/gpt2/format/internal/le"
	"github.com/gpt2go/gpt2/internal/mmap"
)

// MaxHeaderSize is the largest JSON header accepted, the same limit as the
// reference implementation's. It keeps a corrupt length from making the
// parser chew through (and allocate for) a huge region of a large file.
const MaxHeaderSize = 100 << 20

// metadataKey is the reserved header key holding string metadata.
const metadataKey = "__metadata__"

var (
	// ErrInvalid is matched (with errors.Is) by every error that reports
	// malformed file contents, as opposed to I/O failures or misuse.
	ErrInvalid = errors.New("invalid safetensors data")
	// ErrNotFound is returned for a tensor name the file does not have.
	ErrNotFound = errors.New("tensor not found")
)

// formatError is a validation failure; it matches ErrInvalid without
// repeating its text in every message.
type formatError struct{ msg string }

func (e *formatError) Error() string        { return e.msg }
func (e *formatError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, args ...any) error {
	return &formatError{fmt.Sprintf(format, args...)}
}

// TensorInfo describes one tensor in a file.
type TensorInfo struct {
	Name  string
	DType DType
	Shape []int
	// Offset is the absolute file offset of the tensor's first byte.
	Offset int64
	// Size is the tensor's length in bytes: the product of Shape times
	// DType.Size().
	Size int64
}

// NumElements returns the number of elements, the product of Shape.
func (t TensorInfo) NumElements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d // cannot overflow: validated against the file's size
	}
	return n
}

// File is a parsed safetensors file. Its methods are safe for concurrent
// use, except Close, which must not run concurrently with the others.
type File struct {
	path     string // for error messages; empty when from Parse
	data     []byte // the whole file; nil once closed
	mapping  *mmap.Mapping
	infos    map[string]TensorInfo
	names    []string // sorted
	metadata map[string]string
}

// Open maps the file at path read-only and validates its header. Slices
// returned by the File's methods point into the mapping: they must not be
// modified (writing faults), and they become invalid after Close.
func Open(path string) (*File, error) {
	m, err := mmap.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := parse(m.Data())
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("safetensors %s: %w", path, err)
	}
	f.path = path
	f.mapping = m
	return f, nil
}

// Parse validates data as a complete safetensors file. The File refers to
// data rather than copying it, so data must not change while the File and
// any slice obtained from it are in use.
func Parse(data []byte) (*File, error) {
	f, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return f, nil
}

func parse(data []byte) (*File, error) {
	if len(data) < 8 {
		return nil, invalidf("file is %d bytes, too short for the 8-byte header length", len(data))
	}
	n := binary.LittleEndian.Uint64(data)
	if n > uint64(len(data)-8) {
		return nil, invalidf("header length %d exceeds the %d bytes that follow it", n, len(data)-8)
	}
	if n > MaxHeaderSize {
		return nil, invalidf("header length %d exceeds the limit of %d", n, MaxHeaderSize)
	}
	start := 8 + int64(n)
	bufLen := int64(len(data)) - start
	infos, meta, err := parseHeader(data[8:start], bufLen)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(infos))
	for name, info := range infos {
		info.Offset += start // relative to the buffer until now
		infos[name] = info
		names = append(names, name)
	}
	sort.Strings(names)
	if err := checkOverlap(infos, names); err != nil {
		return nil, err
	}
	return &File{data: data, infos: infos, names: names, metadata: meta}, nil
}

// parseHeader decodes and validates the JSON header. The data buffer that
// follows it is bufLen bytes; the returned offsets are relative to it.
func parseHeader(header []byte, bufLen int64) (map[string]TensorInfo, map[string]string, error) {
	// encoding/json would silently replace invalid UTF-8, turning two
	// distinct (invalid) names into one.
	if !utf8.Valid(header) {
		return nil, nil, invalidf("header is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(header))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, nil, invalidf("header: %v", err)
	}
	infos := make(map[string]TensorInfo)
	var meta map[string]string
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, invalidf("header: %v", err)
		}
		name, ok := tok.(string)
		if !ok { // unreachable: the decoder only returns strings as keys
			return nil, nil, invalidf("header: unexpected %v", tok)
		}
		if name == metadataKey {
			if seenMeta {
				return nil, nil, invalidf("header: duplicate %s", metadataKey)
			}
			seenMeta = true
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, invalidf("header: %s: %v", metadataKey, err)
			}
			continue
		}
		if _, dup := infos[name]; dup {
			return nil, nil, invalidf("header: duplicate tensor %q", name)
		}
		info, err := decodeInfo(dec, bufLen)
		if err != nil {
			return nil, nil, invalidf("header: tensor %q: %v", name, err)
		}
		info.Name = name
		infos[name] = info
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, nil, invalidf("header: %v", err)
	}
	// Only whitespace (the writer's padding) may follow the object.
	if tok, err := dec.Token(); err != io.EOF {
		if err == nil {
			err = fmt.Errorf("unexpected %v", tok)
		}
		return nil, nil, invalidf("header: after the JSON object: %v", err)
	}
	return infos, meta, nil
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	if err != nil {
		return err
	}
	if tok != want {
		return fmt.Errorf("found %v where %v was expected", tok, want)
	}
	return nil
}

// decodeInfo decodes one tensor's {"dtype", "shape", "data_offsets"} object
// and checks it against a data buffer of bufLen bytes.
func decodeInfo(dec *json.Decoder, bufLen int64) (TensorInfo, error) {
	var (
		dtype   *string
		shape   *[]int64
		offsets *[]int64
	)
	if err := expectDelim(dec, '{'); err != nil {
		return TensorInfo{}, err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return TensorInfo{}, err
		}
		key, ok := tok.(string)
		if !ok {
			return TensorInfo{}, fmt.Errorf("unexpected %v", tok)
		}
		var dst any
		switch key {
		case "dtype":
			if dtype != nil {
				return TensorInfo{}, errors.New("duplicate dtype")
			}
			dst = &dtype
		case "shape":
			if shape != nil {
				return TensorInfo{}, errors.New("duplicate shape")
			}
			dst = &shape
		case "data_offsets":
			if offsets != nil {
				return TensorInfo{}, errors.New("duplicate data_offsets")
			}
			dst = &offsets
		default:
			dst = new(json.RawMessage) // unknown fields are ignored
		}
		if err := dec.Decode(dst); err != nil {
			return TensorInfo{}, fmt.Errorf("%s: %v", key, err)
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return TensorInfo{}, err
	}
	switch {
	case dtype == nil:
		return TensorInfo{}, errors.New("missing dtype")
	case shape == nil:
		return TensorInfo{}, errors.New("missing shape")
	case offsets == nil:
		return TensorInfo{}, errors.New("missing data_offsets")
	}

	dt := DType(*dtype)
	if dt.Size() == 0 {
		return TensorInfo{}, fmt.Errorf("unknown dtype %q", *dtype)
	}
	for _, d := range *shape {
		if d < 0 {
			return TensorInfo{}, fmt.Errorf("invalid dimension %d in shape %v", d, *shape)
		}
	}
	if len(*offsets) != 2 {
		return TensorInfo{}, fmt.Errorf("data_offsets has %d elements, want 2", len(*offsets))
	}
	begin, end := (*offsets)[0], (*offsets)[1]
	if begin < 0 || end < begin || end > bufLen {
		return TensorInfo{}, fmt.Errorf("data_offsets [%d, %d] outside the %d-byte data buffer", begin, end, bufLen)
	}
	size, ok := byteSize(*shape, int64(dt.Size()))
	if !ok || size != end-begin {
		return TensorInfo{}, fmt.Errorf("shape %v of %s needs %s bytes, but data_offsets [%d, %d] span %d",
			*shape, dt, sizeString(size, ok), begin, end, end-begin)
	}
	dims := make([]int, len(*shape))
	for i, d := range *shape {
		if uint64(d) > math.MaxInt {
			return TensorInfo{}, fmt.Errorf("dimension %d of shape %v too large for this platform", d, *shape)
		}
		dims[i] = int(d)
	}
	return TensorInfo{DType: dt, Shape: dims, Offset: begin, Size: size}, nil
}

// byteSize returns elem times the product of shape, or false if that
// overflows int64. All dims must be non-negative.
func byteSize[T int | int64](shape []T, elem int64) (int64, bool) {
	if slices.Contains(shape, 0) {
		return 0, true // even if other dims are huge
	}
	n := elem
	for _, d := range shape {
		if int64(d) > math.MaxInt64/n {
			return 0, false
		}
		n *= int64(d)
	}
	return n, true
}

func sizeString(n int64, ok bool) string {
	if !ok {
		return "more than 2^63"
	}
	return fmt.Sprint(n)
}

// checkOverlap rejects tensors whose byte ranges overlap. The reference
// implementation also rejects gaps; those are harmless, so they are allowed.
func checkOverlap(infos map[string]TensorInfo, names []string) error {
	byOffset := make([]TensorInfo, 0, len(names))
	for _, name := range names {
		if info := infos[name]; info.Size > 0 {
			byOffset = append(byOffset, info)
		}
	}
	sort.SliceStable(byOffset, func(i, j int) bool { return byOffset[i].Offset < byOffset[j].Offset })
	for i := 1; i < len(byOffset); i++ {
		prev, cur := byOffset[i-1], byOffset[i]
		if cur.Offset < prev.Offset+prev.Size {
			return invalidf("header: tensors %q and %q overlap", prev.Name, cur.Name)
		}
	}
	return nil
}

// Names returns the tensor names, sorted.
func (f *File) Names() []string { return slices.Clone(f.names) }

// Info returns the description of the named tensor.
func (f *File) Info(name string) (TensorInfo, bool) {
	info, ok := f.infos[name]
	info.Shape = slices.Clone(info.Shape)
	return info, ok
}

// Metadata returns a copy of the header's __metadata__ map (possibly empty).
func (f *File) Metadata() map[string]string {
	m := maps.Clone(f.metadata)
	if m == nil {
		m = map[string]string{}
	}
	return m
}

func (f *File) errorf(name string, err error) error {
	if f.path == "" {
		return fmt.Errorf("safetensors: tensor %q: %w", name, err)
	}
	return fmt.Errorf("safetensors %s: tensor %q: %w", f.path, name, err)
}

// Bytes returns the named tensor's raw little-endian bytes. The slice is a
// view of the file (see Open and Parse), not a copy.
func (f *File) Bytes(name string) ([]byte, error) {
	info, ok := f.infos[name]
	if !ok {
		return nil, f.errorf(name, ErrNotFound)
	}
	if f.data == nil {
		return nil, f.errorf(name, os.ErrClosed)
	}
	end := info.Offset + info.Size
	// The capacity is capped so that an append cannot scribble over the
	// next tensor.
	return f.data[info.Offset:end:end], nil
}

// Float32 returns the named tensor's elements as float32. For F32 data the
// result is a read-only view of the file when the data is 4-byte aligned
// and the machine is little-endian, and a copy otherwise; F16, BF16 and F64
// data are converted into a new slice. Other dtypes are an error.
func (f *File) Float32(name string) ([]float32, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	switch dt := f.infos[name].DType; dt {
	case F32:
		return le.Float32(b), nil
	case F16:
		return le.F16ToFloat32(b), nil
	case BF16:
		return le.BF16ToFloat32(b), nil
	case F64:
		return le.F64ToFloat32(b), nil
	default:
		return nil, f.errorf(name, fmt.Errorf("dtype %s cannot be read as float32", dt))
	}
}

// Uint16 returns the raw 16-bit elements of an F16, BF16, I16 or U16
// tensor: a read-only view of the file when aligned on a little-endian
// machine, else a copy. Use package half to convert F16/BF16 bits.
func (f *File) Uint16(name string) ([]uint16, error) {
	b, err := f.Bytes(name)
	if err != nil {
		return nil, err
	}
	if dt := f.infos[name].DType; dt.Size() != 2 {
		return nil, f.errorf(name, fmt.Errorf("dtype %s is not a 16-bit type", dt))
	}
	return le.Uint16(b), nil
}

// Close releases the file. Slices obtained from the File before, views of
// a mapping in particular, must not be used afterwards: touching them may
// crash the program. Close is safe to call more than once.
func (f *File) Close() error {
	f.data = nil
	if f.mapping == nil {
		return nil
	}
	err := f.mapping.Close()
	f.mapping = nil
	if err != nil {
		return fmt.Errorf("safetensors %s: close: %w", f.path, err)
	}
	return nil
}
