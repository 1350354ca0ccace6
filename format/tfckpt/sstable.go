package tfckpt

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// This file reads LevelDB-format tables ("SSTables"), the container of a
// bundle's index. Layout: data blocks, a metaindex block, an index block
// whose entries point at the data blocks, and a fixed-size footer.
// https://github.com/google/leveldb/blob/main/doc/table_format.md

const (
	footerLen       = 48
	tableMagic      = 0xdb4775248b80fb57
	blockTrailerLen = 5 // compression type byte + masked CRC-32C

	compressionNone   = 0
	compressionSnappy = 1

	// maxKeyLen bounds a single key. Tensor names are far shorter; the bound
	// stops prefix compression from growing keys without limit.
	maxKeyLen = 1 << 16
)

// keyBudget bounds the total length of the keys in a table of tableLen
// bytes. Prefix compression lets a few bytes stand for a long key, so
// without a bound a small crafted table could make callers that keep the
// keys (as tensor names) allocate quadratically in its size. Real tables
// never come close: their keys add up to a fraction of the table.
func keyBudget(tableLen int) uint64 {
	return 1<<20 + 16*uint64(tableLen)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskCRC is LevelDB's (and TensorFlow's) CRC masking, which makes the CRC
// of data that itself contains CRCs well behaved.
func maskCRC(c uint32) uint32 {
	return (c>>15 | c<<17) + 0xa282ead8
}

type blockHandle struct {
	offset, size uint64
}

func decodeHandle(b []byte) (blockHandle, int, error) {
	off, n := binary.Uvarint(b)
	if n <= 0 {
		return blockHandle{}, 0, invalidf("bad block handle")
	}
	size, m := binary.Uvarint(b[n:])
	if m <= 0 {
		return blockHandle{}, 0, invalidf("bad block handle")
	}
	return blockHandle{off, size}, n + m, nil
}

// readTable calls fn for every entry of the table in data, in key order.
// key and value are only valid during the call.
func readTable(data []byte, fn func(key, value []byte) error) error {
	if len(data) < footerLen {
		return invalidf("%d bytes is too short for a table footer (%d bytes)", len(data), footerLen)
	}
	footer := data[len(data)-footerLen:]
	if magic := binary.LittleEndian.Uint64(footer[footerLen-8:]); magic != tableMagic {
		return invalidf("bad table magic number %#016x, want %#016x", magic, uint64(tableMagic))
	}
	meta, n, err := decodeHandle(footer[:footerLen-8])
	if err != nil {
		return fmt.Errorf("footer: metaindex: %w", err)
	}
	index, _, err := decodeHandle(footer[n : footerLen-8])
	if err != nil {
		return fmt.Errorf("footer: index: %w", err)
	}
	body := data[:len(data)-footerLen]

	// The metaindex block (filters, statistics) carries nothing a reader
	// needs, but it is checked so that corruption is noticed.
	metaBlock, err := readBlock(body, meta)
	if err != nil {
		return fmt.Errorf("metaindex block at offset %d: %w", meta.offset, err)
	}
	if err := iterateBlock(metaBlock, "metaindex block", func(_, _ []byte) error { return nil }); err != nil {
		return err
	}
	indexBlock, err := readBlock(body, index)
	if err != nil {
		return fmt.Errorf("index block at offset %d: %w", index.offset, err)
	}

	var (
		prevKey []byte
		first   = true
		nextOff uint64 // data blocks must not overlap, so none is read twice
		budget  = keyBudget(len(data))
	)
	return iterateBlock(indexBlock, "index block", func(_, hv []byte) error {
		h, _, err := decodeHandle(hv)
		if err != nil {
			return fmt.Errorf("index block: %w", err)
		}
		if h.offset < nextOff {
			return invalidf("index block: data block at offset %d overlaps the previous one", h.offset)
		}
		block, err := readBlock(body, h)
		if err != nil {
			return fmt.Errorf("data block at offset %d: %w", h.offset, err)
		}
		nextOff = h.offset + h.size + blockTrailerLen // cannot overflow: checked by readBlock
		return iterateBlock(block, fmt.Sprintf("data block at offset %d", h.offset), func(key, value []byte) error {
			// Increasing keys are a table invariant, and checking it keeps
			// a crafted table from yielding one name many times.
			if !first && bytes.Compare(key, prevKey) <= 0 {
				return invalidf("data block at offset %d: key %q out of order after %q", h.offset, key, prevKey)
			}
			first = false
			if uint64(len(key)) > budget {
				return invalidf("keys add up to more than %d bytes", keyBudget(len(data)))
			}
			budget -= uint64(len(key))
			prevKey = append(prevKey[:0], key...)
			return fn(key, value)
		})
	})
}

// readBlock returns the contents of the block at h within body, after
// checking its CRC and decompressing it.
func readBlock(body []byte, h blockHandle) ([]byte, error) {
	n := uint64(len(body))
	if h.offset > n || h.size > n-h.offset || n-h.offset-h.size < blockTrailerLen {
		return nil, invalidf("offset %d, size %d extends past the end of the table (%d bytes before the footer)", h.offset, h.size, n)
	}
	contents := body[h.offset : h.offset+h.size]
	trailer := body[h.offset+h.size : h.offset+h.size+blockTrailerLen]
	crc := crc32.Update(crc32.Checksum(contents, castagnoli), castagnoli, trailer[:1])
	if stored := binary.LittleEndian.Uint32(trailer[1:]); maskCRC(crc) != stored {
		return nil, invalidf("checksum mismatch (stored %#08x, computed %#08x)", stored, maskCRC(crc))
	}
	switch trailer[0] {
	case compressionNone:
		return contents, nil
	case compressionSnappy:
		b, err := snappyDecode(contents)
		if err != nil {
			return nil, invalid(err)
		}
		return b, nil
	default:
		return nil, invalidf("unsupported compression type %d", trailer[0])
	}
}

// iterateBlock calls fn for each entry in a block. A block is a sequence
// of prefix-compressed entries (varint shared key length, varint unshared
// length, varint value length, unshared key bytes, value) followed by an
// array of u32 restart offsets and its u32 length. The restarts only
// speed up seeking, so a linear scan just checks them.
func iterateBlock(b []byte, where string, fn func(key, value []byte) error) error {
	if len(b) < 4 {
		return invalidf("%s: block of %d bytes is too short", where, len(b))
	}
	numRestarts := uint64(binary.LittleEndian.Uint32(b[len(b)-4:]))
	if numRestarts > uint64(len(b)-4)/4 {
		return invalidf("%s: block of %d bytes cannot hold %d restart points", where, len(b), numRestarts)
	}
	limit := len(b) - 4 - 4*int(numRestarts)
	for i := range int(numRestarts) {
		if r := binary.LittleEndian.Uint32(b[limit+4*i:]); uint64(r) > uint64(limit) {
			return invalidf("%s: restart point %d is past the entries (%d bytes)", where, r, limit)
		}
	}
	var key []byte
	for p := 0; p < limit; {
		var hdr [3]uint64
		for i := range hdr {
			v, n := binary.Uvarint(b[p:limit])
			if n <= 0 || v > 1<<32-1 {
				return invalidf("%s: entry at %d: bad length varint", where, p)
			}
			hdr[i] = v
			p += n
		}
		shared, unshared, valueLen := hdr[0], hdr[1], hdr[2]
		rest := uint64(limit - p)
		switch {
		case shared > uint64(len(key)):
			return invalidf("%s: entry at %d: shares %d bytes with a %d-byte key", where, p, shared, len(key))
		case unshared > rest || valueLen > rest-unshared:
			return invalidf("%s: entry at %d: key and value lengths %d+%d exceed the block", where, p, unshared, valueLen)
		case shared+unshared > maxKeyLen:
			return invalidf("%s: entry at %d: key of %d bytes exceeds the limit of %d", where, p, shared+unshared, maxKeyLen)
		}
		key = append(key[:shared], b[p:p+int(unshared)]...)
		p += int(unshared)
		value := b[p : p+int(valueLen) : p+int(valueLen)]
		p += int(valueLen)
		if err := fn(key, value); err != nil {
			return err
		}
	}
	return nil
}
