package tfckpt

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// This file builds bundles for tests: a LevelDB table writer, protobuf
// encoders and a literal-only snappy encoder.

type kv struct{ key, value []byte }

type tableOptions struct {
	blockEntries    int  // entries per data block (0: all in one)
	restartInterval int  // entries between restart points (0: 16)
	snappy          bool // compress blocks (with literals only)
}

// buildTable returns a LevelDB table holding entries, in the given order
// (which should be sorted).
func buildTable(entries []kv, opt tableOptions) []byte {
	if opt.restartInterval == 0 {
		opt.restartInterval = 16
	}
	if opt.blockEntries == 0 {
		opt.blockEntries = max(len(entries), 1)
	}
	var out, index []byte
	var indexEntries []kv
	for start := 0; start < len(entries); start += opt.blockEntries {
		chunk := entries[start:min(start+opt.blockEntries, len(entries))]
		h := appendBlock(&out, encodeBlock(chunk, opt.restartInterval), opt.snappy)
		indexEntries = append(indexEntries, kv{chunk[len(chunk)-1].key, h})
	}
	meta := appendBlock(&out, encodeBlock(nil, 1), false)
	idx := appendBlock(&out, encodeBlock(indexEntries, 1), false)
	index = append(index, meta...)
	index = append(index, idx...)
	footer := make([]byte, footerLen)
	copy(footer, index)
	binary.LittleEndian.PutUint64(footer[footerLen-8:], tableMagic)
	return append(out, footer...)
}

func encodeBlock(entries []kv, restartInterval int) []byte {
	var b []byte
	restarts := []uint32{0}
	var prev []byte
	for i, e := range entries {
		shared := 0
		if i%restartInterval == 0 {
			if i > 0 {
				restarts = append(restarts, uint32(len(b)))
			}
		} else {
			for shared < len(prev) && shared < len(e.key) && prev[shared] == e.key[shared] {
				shared++
			}
		}
		b = binary.AppendUvarint(b, uint64(shared))
		b = binary.AppendUvarint(b, uint64(len(e.key)-shared))
		b = binary.AppendUvarint(b, uint64(len(e.value)))
		b = append(b, e.key[shared:]...)
		b = append(b, e.value...)
		prev = e.key
	}
	for _, r := range restarts {
		b = binary.LittleEndian.AppendUint32(b, r)
	}
	return binary.LittleEndian.AppendUint32(b, uint32(len(restarts)))
}

// appendBlock appends a block with its trailer to out and returns the
// encoded handle.
func appendBlock(out *[]byte, contents []byte, snappy bool) []byte {
	if snappy {
		return appendRawBlock(out, snappyLiteral(contents), compressionSnappy)
	}
	return appendRawBlock(out, contents, compressionNone)
}

// appendRawBlock appends contents as a block of compression type typ.
func appendRawBlock(out *[]byte, contents []byte, typ byte) []byte {
	h := binary.AppendUvarint(nil, uint64(len(*out)))
	h = binary.AppendUvarint(h, uint64(len(contents)))
	*out = append(*out, contents...)
	*out = append(*out, typ)
	*out = binary.LittleEndian.AppendUint32(*out, maskCRC(crc32Update(contents, typ)))
	return h
}

// snappyLiteral encodes b as snappy using literals only: valid, not small.
func snappyLiteral(b []byte) []byte {
	out := binary.AppendUvarint(nil, uint64(len(b)))
	for len(b) > 0 {
		n := min(len(b), 1<<16)
		out = append(out, 61<<2, byte(n-1), byte((n-1)>>8))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return out
}

func pbKey(b []byte, field int, wt wireType) []byte {
	return binary.AppendUvarint(b, uint64(field)<<3|uint64(wt))
}

func pbVarint(b []byte, field int, v uint64) []byte {
	return binary.AppendUvarint(pbKey(b, field, wireVarint), v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(pbKey(b, field, wireBytes), uint64(len(v)))
	return append(b, v...)
}

func encodeHeaderProto(numShards int) []byte {
	version := pbVarint(nil, 1, 1) // producer
	b := pbVarint(nil, 1, uint64(numShards))
	return pbBytes(b, 3, version)
}

// testTensor is a tensor to put into a test bundle.
type testTensor struct {
	name  string
	dtype uint64 // TensorFlow DataType enum
	shape []int64
	data  []byte
	shard int
}

func encodeShape(shape []int64) []byte {
	var s []byte
	for _, d := range shape {
		s = pbBytes(s, 2, pbVarint(nil, 1, uint64(d)))
	}
	return s
}

// encodeEntryProto encodes a BundleEntryProto the way TensorFlow does,
// leaving out zero-valued fields.
func encodeEntryProto(dtype uint64, shape []int64, shard int, offset, size int64, crc uint32) []byte {
	b := pbVarint(nil, 1, dtype)
	b = pbBytes(b, 2, encodeShape(shape))
	if shard != 0 {
		b = pbVarint(b, 3, uint64(shard))
	}
	if offset != 0 {
		b = pbVarint(b, 4, uint64(offset))
	}
	if size != 0 {
		b = pbVarint(b, 5, uint64(size))
	}
	b = pbKey(b, 6, wireFixed32)
	return binary.LittleEndian.AppendUint32(b, crc)
}

// buildBundle returns the index and the data shards of a bundle holding
// tensors, which are stored in name order as TensorFlow does.
func buildBundle(tensors []testTensor, numShards int, opt tableOptions) (index []byte, shards [][]byte) {
	tensors = slices.Clone(tensors)
	slices.SortFunc(tensors, func(a, b testTensor) int { return bytes.Compare([]byte(a.name), []byte(b.name)) })
	shards = make([][]byte, numShards)
	entries := []kv{{nil, encodeHeaderProto(numShards)}}
	for _, t := range tensors {
		off := int64(len(shards[t.shard]))
		shards[t.shard] = append(shards[t.shard], t.data...)
		crc := maskCRC(crc32.Checksum(t.data, castagnoli))
		entries = append(entries, kv{[]byte(t.name), encodeEntryProto(t.dtype, t.shape, t.shard, off, int64(len(t.data)), crc)})
	}
	return buildTable(entries, opt), shards
}

// writeBundle writes a bundle into dir and returns its prefix.
func writeBundle(t testing.TB, dir string, tensors []testTensor, numShards int, opt tableOptions) string {
	t.Helper()
	prefix := filepath.Join(dir, "model.ckpt")
	index, shards := buildBundle(tensors, numShards, opt)
	if err := os.WriteFile(prefix+".index", index, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, s := range shards {
		if err := os.WriteFile(DataFile(prefix, i, numShards), s, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return prefix
}

func crc32Update(contents []byte, typ byte) uint32 {
	return crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, []byte{typ})
}
