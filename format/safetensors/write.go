package safetensors

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Tensor is a tensor to write: its raw little-endian bytes and how to read
// them.
type Tensor struct {
	Name  string
	DType DType
	Shape []int
	Data  []byte
}

// F32Tensor returns an F32 tensor holding v, encoded little-endian.
func F32Tensor(name string, shape []int, v []float32) Tensor {
	data := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: F32, Shape: slices.Clone(shape), Data: data}
}

// DataAlign is the alignment of the data buffer in the files Write
// makes. The format asks for 8; a cache line's 64 keep a mapped tensor
// whose offset is a multiple of 64 (every GPT-2 weight, in every type) on
// line boundaries, where a vector load never spans two lines: bf16 weights
// 8 bytes off decode ~7% slower.
const DataAlign = 64

// Write writes a safetensors file holding tensors, laid out back to back
// in the given order, and metadata (which may be nil). The header is padded
// with spaces so that the data buffer starts on a multiple of DataAlign
// bytes. Nothing is written if the tensors are invalid.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	if err := writeTo(w, header, tensors); err != nil {
		return fmt.Errorf("safetensors: write: %w", err)
	}
	return nil
}

func writeTo(w io.Writer, header []byte, tensors []Tensor) error {
	if _, err := w.Write(header); err != nil {
		return err
	}
	for _, t := range tensors {
		if _, err := w.Write(t.Data); err != nil {
			return err
		}
	}
	return nil
}

// syncFile is a variable so that tests can make it fail.
var syncFile = (*os.File).Sync

// WriteFile writes a safetensors file (see Write) to path atomically: it
// writes path+".tmp" in the same directory, syncs it, renames it over path
// and syncs the directory, so path holds either its old contents or the
// complete new file, even after a crash.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	header, err := encodeHeader(tensors, metadata)
	if err == nil {
		err = writeFileAtomic(path, header, tensors)
	}
	if err != nil {
		return fmt.Errorf("safetensors %s: %w", path, err)
	}
	return nil
}

func writeFileAtomic(path string, header []byte, tensors []Tensor) (err error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := writeTo(bw, header, tensors); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := syncFile(f); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir makes a rename in dir durable. Windows cannot sync directories
// (and needs not), so failures there are ignored.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		if runtime.GOOS == "windows" {
			return nil
		}
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

// encodeHeader validates tensors and metadata and returns the 8-byte length
// followed by the padded JSON header.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	b := make([]byte, 8, 256)
	b = append(b, '{')
	if len(metadata) > 0 {
		keys := make([]string, 0, len(metadata))
		for k := range metadata {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic output
		b = appendString(b, metadataKey)
		b = append(b, ":{"...)
		for i, k := range keys {
			v := metadata[k]
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				return nil, fmt.Errorf("metadata %q: not valid UTF-8", k)
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, v)
		}
		b = append(b, '}')
	}
	seen := make(map[string]bool, len(tensors))
	var offset int64
	for i, t := range tensors {
		if err := checkTensor(t, seen); err != nil {
			return nil, fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if i > 0 || len(metadata) > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.Name)
		b = append(b, `:{"dtype":`...)
		b = appendString(b, string(t.DType))
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(d), 10)
		}
		b = append(b, `],"data_offsets":[`...)
		b = strconv.AppendInt(b, offset, 10)
		offset += int64(len(t.Data))
		b = append(b, ',')
		b = strconv.AppendInt(b, offset, 10)
		b = append(b, "]}"...)
	}
	b = append(b, '}')
	for len(b)%DataAlign != 0 {
		b = append(b, ' ')
	}
	if len(b)-8 > MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds the limit of %d", len(b)-8, MaxHeaderSize)
	}
	binary.LittleEndian.PutUint64(b, uint64(len(b)-8))
	return b, nil
}

func checkTensor(t Tensor, seen map[string]bool) error {
	switch {
	case t.Name == metadataKey:
		return errors.New("name is reserved")
	case !utf8.ValidString(t.Name):
		return errors.New("name is not valid UTF-8")
	case seen[t.Name]:
		return errors.New("duplicate name")
	case t.DType.Size() == 0:
		return fmt.Errorf("unknown dtype %q", t.DType)
	}
	seen[t.Name] = true
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("negative dimension in shape %v", t.Shape)
		}
	}
	size, ok := byteSize(t.Shape, int64(t.DType.Size()))
	if !ok || size != int64(len(t.Data)) {
		return fmt.Errorf("shape %v of %s needs %s bytes, have %d", t.Shape, t.DType, sizeString(size, ok), len(t.Data))
	}
	return nil
}

// appendString appends s as a JSON string. s must be valid UTF-8. Unlike
// encoding/json it leaves <, > and & alone, so names read back verbatim by
// any reader and look as expected in a hex dump.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
