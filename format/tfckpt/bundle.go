// Package tfckpt reads TensorFlow V2 checkpoints ("tensor bundles"), such
// as OpenAI's original GPT-2 release, without TensorFlow.
//
// A bundle with prefix P is an index file P.index, a LevelDB table mapping
// each tensor name to its dtype, shape and location, and data files
// P.data-00000-of-0000N holding the tensors' raw little-endian bytes. The
// data files are mapped read-only, so reading a tensor copies nothing, and
// each tensor's CRC-32C is checked before its data is first handed out.
package tfckpt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/gpt2go/gpt2/format/internal/le"
	"github.com/gpt2go/gpt2/internal/mmap"
)

var (
	// ErrInvalid is matched (with errors.Is) by every error that reports
	// malformed or corrupt file contents, checksum mismatches included.
	ErrInvalid = errors.New("invalid tensor bundle")
	// ErrNotFound is returned for a tensor name the bundle does not have.
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

func invalid(err error) error { return &formatError{err.Error()} }

// Bundle is an open checkpoint. Its methods are safe for concurrent use,
// except Close, which must not run concurrently with the others.
type Bundle struct {
	prefix   string
	entries  []Entry // sorted by name
	byName   map[string]int
	verified []atomic.Bool // whether entries[i]'s checksum has been checked
	shards   map[int]*mmap.Mapping
	files    map[int]string // shard file names, for errors
}

// DataFile returns the name of a bundle's data file: prefix.data-SSSSS-of-NNNNN.
func DataFile(prefix string, shard, numShards int) string {
	return fmt.Sprintf("%s.data-%05d-of-%05d", prefix, shard, numShards)
}

// Open opens the bundle with the given prefix (for example
// "dir/model.ckpt"): it parses prefix.index and maps the data files that
// its tensors live in. Slices returned by the Bundle's methods may point
// into those mappings: they must not be modified, and they become invalid
// after Close.
func Open(prefix string) (*Bundle, error) {
	indexPath := prefix + ".index"
	data, err := os.ReadFile(indexPath)
	if err != nil {
		return nil, fmt.Errorf("tfckpt: %w", err)
	}
	hdr, entries, err := parseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("tfckpt %s: %w", indexPath, err)
	}
	b := &Bundle{
		prefix:   prefix,
		entries:  entries,
		byName:   make(map[string]int, len(entries)),
		verified: make([]atomic.Bool, len(entries)),
		shards:   make(map[int]*mmap.Mapping),
		files:    make(map[int]string),
	}
	for i, e := range entries {
		b.byName[e.Name] = i
		m, ok := b.shards[e.Shard]
		if !ok {
			// Only shards that hold tensors are opened: the shard count is
			// just a number in the header.
			name := DataFile(prefix, e.Shard, int(hdr.numShards))
			m, err = mmap.Open(name)
			if err != nil {
				b.Close()
				return nil, fmt.Errorf("tfckpt: %w", err)
			}
			b.shards[e.Shard], b.files[e.Shard] = m, name
		}
		if n := int64(len(m.Data())); e.Offset > n || e.Size > n-e.Offset {
			b.Close()
			return nil, fmt.Errorf("tfckpt %s: tensor %q: %w", b.files[e.Shard], e.Name,
				invalidf("bytes [%d, %d) extend past the end of the %d-byte file", e.Offset, e.Offset+e.Size, n))
		}
	}
	return b, nil
}

// OpenDir opens the checkpoint in dir named by dir/checkpoint, the text
// file TensorFlow's Saver writes (model_checkpoint_path: "model.ckpt"), or
// dir/model.ckpt if there is no such file.
func OpenDir(dir string) (*Bundle, error) {
	prefix, err := checkpointPrefix(dir)
	if err != nil {
		return nil, err
	}
	return Open(prefix)
}

func checkpointPrefix(dir string) (string, error) {
	statePath := filepath.Join(dir, "checkpoint")
	data, err := os.ReadFile(statePath)
	if errors.Is(err, os.ErrNotExist) {
		return filepath.Join(dir, "model.ckpt"), nil
	}
	if err != nil {
		return "", fmt.Errorf("tfckpt: %w", err)
	}
	p, err := parseCheckpointState(data)
	if err != nil {
		return "", fmt.Errorf("tfckpt %s: %w", statePath, err)
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(dir, p), nil
	}
	// Absolute paths usually point where the checkpoint was written, not
	// where it was copied to; fall back to the same name in dir.
	if _, err := os.Stat(p + ".index"); err != nil {
		return filepath.Join(dir, filepath.Base(p)), nil
	}
	return p, nil
}

// parseCheckpointState extracts model_checkpoint_path from a
// CheckpointState text proto.
func parseCheckpointState(data []byte) (string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		rest, ok := strings.CutPrefix(line, "model_checkpoint_path")
		if !ok {
			continue
		}
		rest, ok = strings.CutPrefix(strings.TrimSpace(rest), ":")
		if !ok {
			continue
		}
		v, err := unquoteText(strings.TrimSpace(rest))
		if err != nil {
			return "", fmt.Errorf("model_checkpoint_path: %w", err)
		}
		if v == "" {
			return "", errors.New("model_checkpoint_path is empty")
		}
		return v, nil
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("no model_checkpoint_path")
}

// unquoteText unquotes a text-format protobuf string, which uses C-style
// escapes and either quote character.
func unquoteText(s string) (string, error) {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') || s[len(s)-1] != s[0] {
		return "", fmt.Errorf("malformed string %s", s)
	}
	if s[0] == '\'' {
		// Go has no single-quoted strings; requote (escaped quotes inside
		// are rare enough in paths not to need more).
		s = `"` + strings.ReplaceAll(s[1:len(s)-1], `"`, `\"`) + `"`
	}
	v, err := strconv.Unquote(strings.ReplaceAll(s, `\'`, `'`))
	if err != nil {
		return "", fmt.Errorf("malformed string %s", s)
	}
	return v, nil
}

// Names returns the tensor names, sorted.
func (b *Bundle) Names() []string {
	names := make([]string, len(b.entries))
	for i, e := range b.entries {
		names[i] = e.Name
	}
	return names
}

// Entry returns the description of the named tensor.
func (b *Bundle) Entry(name string) (Entry, bool) {
	i, ok := b.byName[name]
	if !ok {
		return Entry{}, false
	}
	e := b.entries[i]
	e.Shape = slices.Clone(e.Shape)
	return e, true
}

// Entries returns the descriptions of all tensors, sorted by name.
func (b *Bundle) Entries() []Entry {
	es := slices.Clone(b.entries)
	for i := range es {
		es[i].Shape = slices.Clone(es[i].Shape)
	}
	return es
}

// Bytes returns the named tensor's raw little-endian bytes, a view of the
// data file, after checking their CRC-32C (once per tensor).
func (b *Bundle) Bytes(name string) ([]byte, error) {
	i, ok := b.byName[name]
	if !ok {
		return nil, fmt.Errorf("tfckpt %s: tensor %q: %w", b.prefix, name, ErrNotFound)
	}
	e := b.entries[i]
	if e.DType == String {
		return nil, fmt.Errorf("tfckpt %s: tensor %q: reading %s tensors is not supported", b.prefix, name, e.DType)
	}
	m := b.shards[e.Shard]
	if m == nil || m.Data() == nil {
		return nil, fmt.Errorf("tfckpt %s: tensor %q: %w", b.prefix, name, os.ErrClosed)
	}
	data := m.Data()[e.Offset : e.Offset+e.Size : e.Offset+e.Size]
	if !b.verified[i].Load() {
		if got := maskCRC(crc32.Checksum(data, castagnoli)); got != e.CRC32C {
			return nil, fmt.Errorf("tfckpt %s: tensor %q: %w", b.files[e.Shard], name,
				invalidf("checksum mismatch (stored %#08x, computed %#08x): the data is corrupt", e.CRC32C, got))
		}
		b.verified[i].Store(true)
	}
	return data, nil
}

// Float32 returns the named tensor's elements as float32, after checking
// their checksum. For F32 data the result is a read-only view of the data
// file when the data is 4-byte aligned and the machine is little-endian,
// and a copy otherwise; F16, BF16 and F64 data are converted into a new
// slice. Other dtypes are an error.
func (b *Bundle) Float32(name string) ([]float32, error) {
	data, err := b.Bytes(name)
	if err != nil {
		return nil, err
	}
	switch dt := b.entries[b.byName[name]].DType; dt {
	case F32:
		return le.Float32(data), nil
	case F16:
		return le.F16ToFloat32(data), nil
	case BF16:
		return le.BF16ToFloat32(data), nil
	case F64:
		return le.F64ToFloat32(data), nil
	default:
		return nil, fmt.Errorf("tfckpt %s: tensor %q: dtype %s cannot be read as float32", b.prefix, name, dt)
	}
}

// Close unmaps the data files. Slices obtained from the Bundle before must
// not be used afterwards: touching them may crash the program. Close is
// safe to call more than once.
func (b *Bundle) Close() error {
	var errs []error
	for shard, m := range b.shards {
		if err := m.Close(); err != nil {
			errs = append(errs, fmt.Errorf("tfckpt %s: close: %w", b.files[shard], err))
		}
	}
	return errors.Join(errs...)
}
