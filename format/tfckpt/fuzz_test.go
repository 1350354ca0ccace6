package tfckpt

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseIndex(f *testing.F) {
	for _, opt := range []tableOptions{
		{},
		{blockEntries: 2, restartInterval: 2},
		{blockEntries: 3, snappy: true},
	} {
		index, _ := buildBundle(sampleTensors(), 2, opt)
		f.Add(index)
	}
	f.Add(buildTable([]kv{{nil, encodeHeaderProto(1)}}, tableOptions{}))
	shared := os.Getenv("GPT2_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	if index, err := os.ReadFile(filepath.Join(shared, "fixtures", "tiny-real-vocab-openai", "model.ckpt.index")); err == nil {
		f.Add(index)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		checkParseIndex(t, data)
		// Block checksums stop almost every mutation at the first block;
		// repairing them lets the fuzzer reach the block and proto parsers.
		checkParseIndex(t, fixChecksums(data))
	})
}

func checkParseIndex(t *testing.T, data []byte) {
	var entries []Entry
	var err error
	allocated := measureAlloc(func() { entries, err = ParseIndex(data) })
	// Whatever the input claims, parsing allocates in proportion to the
	// input's size (snappy expansion and tensor names included).
	if limit := 2<<20 + 64*uint64(len(data)); allocated > limit {
		t.Fatalf("ParseIndex of %d bytes allocated %d bytes", len(data), allocated)
	}
	if err != nil {
		return
	}
	for i, e := range entries {
		if i > 0 && bytes.Compare([]byte(entries[i-1].Name), []byte(e.Name)) >= 0 {
			t.Fatalf("entries out of order: %q, %q", entries[i-1].Name, e.Name)
		}
		if e.Name == "" || e.Offset < 0 || e.Size < 0 || e.Shard < 0 || e.DType == "" {
			t.Fatalf("bad entry %+v", e)
		}
		if e.DType != String && int64(e.NumElements())*int64(e.DType.Size()) != e.Size {
			t.Fatalf("entry %+v: size does not match shape", e)
		}
	}
}

// fixChecksums returns a copy of table with the checksums of the blocks
// that its footer and index block point to recomputed.
func fixChecksums(table []byte) []byte {
	d := bytes.Clone(table)
	if len(d) < footerLen {
		return d
	}
	footer := d[len(d)-footerLen:]
	meta, n, err := decodeHandle(footer[:footerLen-8])
	if err != nil {
		return d
	}
	index, _, err := decodeHandle(footer[n : footerLen-8])
	if err != nil {
		return d
	}
	body := d[:len(d)-footerLen]
	fix := func(h blockHandle) {
		n := uint64(len(body))
		if h.offset > n || h.size > n-h.offset || n-h.offset-h.size < blockTrailerLen {
			return
		}
		end := h.offset + h.size
		crc := crc32Update(body[h.offset:end], body[end])
		binary.LittleEndian.PutUint32(body[end+1:], maskCRC(crc))
	}
	fix(meta)
	fix(index)
	block, err := readBlock(body, index)
	if err != nil {
		return d
	}
	iterateBlock(block, "", func(_, v []byte) error {
		if h, _, err := decodeHandle(v); err == nil {
			fix(h)
		}
		return nil
	})
	return d
}
