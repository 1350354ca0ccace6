// Package data reads and writes token shards in llm.c's format, feeds
// training batches from them, and prepares shards from text files.
//
// A shard is a 1024-byte header of 256 little-endian int32 (header[0] =
// 20240520, header[1] = 1, header[2] = the number of tokens N, the rest 0)
// followed by N little-endian uint16 token ids.
package data

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"github.com/gpt2go/gpt2/internal/mmap"
)

// The llm.c token-file header.
const (
	Magic      = 20240520
	Version    = 1
	HeaderSize = 256 * 4
)

// ErrFormat is wrapped by the errors for a file that is not a valid shard.
var ErrFormat = errors.New("invalid token shard")

// Shard is an open token file.
type Shard struct {
	Path   string
	tokens []uint16
	unmap  func() error
}

// OpenShard opens and checks a token file, mapping it into memory where
// possible.
func OpenShard(path string) (*Shard, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open token shard: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("open token shard: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("token shard %s: not a regular file: %w", path, ErrFormat)
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return nil, fmt.Errorf("token shard %s: %d bytes is too short for the %d-byte header: %w", path, st.Size(), HeaderSize, ErrFormat)
	}
	magic := int32(binary.LittleEndian.Uint32(hdr[0:]))
	version := int32(binary.LittleEndian.Uint32(hdr[4:]))
	n := int64(int32(binary.LittleEndian.Uint32(hdr[8:])))
	switch {
	case magic != Magic:
		return nil, fmt.Errorf("token shard %s: wrong magic number %d (want %d): not an llm.c token file: %w", path, magic, Magic, ErrFormat)
	case version != Version:
		return nil, fmt.Errorf("token shard %s: unsupported version %d (want %d, uint16 tokens): %w", path, version, Version, ErrFormat)
	case n < 0:
		return nil, fmt.Errorf("token shard %s: negative token count %d: %w", path, n, ErrFormat)
	case st.Size() != HeaderSize+2*n:
		return nil, fmt.Errorf("token shard %s: header says %d tokens, so %d bytes, but the file has %d (truncated or corrupt): %w",
			path, n, HeaderSize+2*n, st.Size(), ErrFormat)
	}
	s := &Shard{Path: path}
	if n == 0 {
		return s, nil
	}
	if nativeLittleEndian {
		m, err := mmap.Open(path)
		if err != nil {
			return nil, fmt.Errorf("token shard %s: %w", path, err)
		}
		data := m.Data()
		if int64(len(data)) != st.Size() {
			m.Close()
			return nil, fmt.Errorf("token shard %s: changed size while being opened", path)
		}
		// The header is 1024 bytes and mappings (and heap buffers) are
		// aligned, so the tokens are 2-byte aligned.
		s.tokens = unsafe.Slice((*uint16)(unsafe.Pointer(&data[HeaderSize])), n)
		s.unmap = m.Close
		return s, nil
	}
	body := make([]byte, 2*n)
	if _, err := f.ReadAt(body, HeaderSize); err != nil {
		return nil, fmt.Errorf("token shard %s: %w", path, err)
	}
	s.tokens = make([]uint16, n)
	for i := range s.tokens {
		s.tokens[i] = binary.LittleEndian.Uint16(body[2*i:])
	}
	return s, nil
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// Tokens returns the shard's tokens. The slice is read-only and invalid
// after Close.
func (s *Shard) Tokens() []uint16 { return s.tokens }

// Len is the number of tokens.
func (s *Shard) Len() int { return len(s.tokens) }

// CheckVocab reports the first token id that is not below vocab.
func (s *Shard) CheckVocab(vocab int) error {
	for i, t := range s.tokens {
		if int(t) >= vocab {
			return fmt.Errorf("token shard %s: token %d at position %d is outside the model's vocabulary of %d: %w",
				s.Path, t, i, vocab, ErrFormat)
		}
	}
	return nil
}

// Close releases the shard's memory.
func (s *Shard) Close() error {
	s.tokens = nil
	if s.unmap != nil {
		err := s.unmap()
		s.unmap = nil
		return err
	}
	return nil
}

// ShardWriter writes a token file, streaming the tokens; the header's
// count is filled in by Close. The file appears at its path only when
// Close succeeds, complete.
type ShardWriter struct {
	path, tmp string
	f         *os.File
	w         *bufio.Writer
	n         int64
	buf       [2]byte
}

// CreateShard starts a token file at path.
func CreateShard(path string) (*ShardWriter, error) {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create token shard: %w", err)
	}
	sw := &ShardWriter{path: path, tmp: tmp, f: f, w: bufio.NewWriterSize(f, 1<<20)}
	var hdr [HeaderSize]byte
	if _, err := sw.w.Write(hdr[:]); err != nil {
		sw.Abort()
		return nil, fmt.Errorf("write token shard %s: %w", path, err)
	}
	return sw, nil
}

// Len is the number of tokens written so far.
func (sw *ShardWriter) Len() int64 { return sw.n }

// Write appends tokens.
func (sw *ShardWriter) Write(tokens []uint16) error {
	if sw.n+int64(len(tokens)) > 1<<31-1 {
		return fmt.Errorf("write token shard %s: more than 2^31-1 tokens do not fit the header", sw.path)
	}
	for _, t := range tokens {
		binary.LittleEndian.PutUint16(sw.buf[:], t)
		if _, err := sw.w.Write(sw.buf[:]); err != nil {
			return fmt.Errorf("write token shard %s: %w", sw.path, err)
		}
	}
	sw.n += int64(len(tokens))
	return nil
}

// Close writes the header, syncs the file and moves it into place.
func (sw *ShardWriter) Close() error {
	err := sw.w.Flush()
	if err == nil {
		var hdr [12]byte
		binary.LittleEndian.PutUint32(hdr[0:], Magic)
		binary.LittleEndian.PutUint32(hdr[4:], Version)
		binary.LittleEndian.PutUint32(hdr[8:], uint32(sw.n))
		_, err = sw.f.WriteAt(hdr[:], 0)
	}
	if err == nil {
		err = sw.f.Sync()
	}
	if cerr := sw.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(sw.tmp, sw.path)
	}
	if err != nil {
		os.Remove(sw.tmp)
		return fmt.Errorf("write token shard %s: %w", sw.path, err)
	}
	return syncDir(filepath.Dir(sw.path))
}

// Abort discards the partial file.
func (sw *ShardWriter) Abort() {
	sw.f.Close()
	os.Remove(sw.tmp)
}

// WriteShard writes tokens to a token file at path, atomically.
func WriteShard(path string, tokens []uint16) error {
	sw, err := CreateShard(path)
	if err != nil {
		return err
	}
	if err := sw.Write(tokens); err != nil {
		sw.Abort()
		return err
	}
	return sw.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return nil // not every system can open directories; the rename stands
	}
	defer d.Close()
	d.Sync()
	return nil
}
