package tokenizer

import (
	"hash/maphash"
	"math/bits"
	"strings"
	"sync"
)

// noMerge is the merge value of a pair that has no merge. It compares greater
// than every real merge value.
const noMerge = ^uint64(0)

// pairMap is an open-addressing hash table from a pair of adjacent token ids
// to the merge value rank<<32 | mergedID, so that comparing merge values
// compares ranks. It is built once and then only read. This lookup is the
// inner loop of BPE, so it is a multiplicative hash with linear probing over
// one flat array rather than a general-purpose map.
type pairMap struct {
	slots []pairSlot
	shift uint // 64 - log2(len(slots))
}

type pairSlot struct {
	key, val uint64 // key == emptyPair marks a free slot
}

// emptyPair cannot be a key: token ids are below 1<<31.
const emptyPair = ^uint64(0)

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

func newPairMap(n int) pairMap {
	// Keep the load factor at or below 1/2 so probes stay short.
	logSize := bits.Len(uint(2*n)) + 1
	if logSize < 4 {
		logSize = 4
	}
	slots := make([]pairSlot, 1<<logSize)
	for i := range slots {
		slots[i].key = emptyPair
	}
	return pairMap{slots: slots, shift: uint(64 - logSize)}
}

func (m *pairMap) slot(key uint64) uint64 {
	return (key * 0x9E3779B97F4A7C15) >> m.shift
}

// add records val for key unless key is already present (the first, highest
// priority merge of a pair wins) and reports whether it did.
func (m *pairMap) add(key, val uint64) bool {
	mask := uint64(len(m.slots) - 1)
	for i := m.slot(key); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.key == key {
			return false
		}
		if s.key == emptyPair {
			s.key, s.val = key, val
			return true
		}
	}
}

// get returns the merge value of the pair (a, b), or noMerge.
func (m *pairMap) get(a, b int32) uint64 {
	key := pairKey(a, b)
	mask := uint64(len(m.slots) - 1)
	for i := m.slot(key); ; i = (i + 1) & mask {
		s := &m.slots[i]
		if s.key == key {
			return s.val
		}
		if s.key == emptyPair {
			return noMerge
		}
	}
}

// Pieces longer than this are merged with a heap, in O(n log n), rather than
// by rescanning all pairs after every merge, which is faster for short pieces
// but quadratic.
const maxQuadraticPiece = 128

// encode appends the ids of text to ids.
func (tab *tables) encode(ids []int, text string) []int {
	for i := 0; i < len(text); {
		j := nextPiece(text, i)
		ids = tab.encodePiece(ids, text[i:j])
		i = j
	}
	return ids
}

// encodePiece appends the ids of one pre-token to ids.
func (tab *tables) encodePiece(ids []int, piece string) []int {
	// Most English pre-tokens are whole tokens; single bytes (newlines,
	// punctuation) need no hashing.
	if len(piece) == 1 {
		return append(ids, int(tab.byteID[piece[0]]))
	}
	if id, ok := tab.encoder.get(piece); ok {
		return append(ids, int(id))
	}
	cacheable := len(piece) <= maxCachedPiece
	if cacheable {
		if toks, ok := tab.cache.get(piece); ok {
			for _, id := range toks {
				ids = append(ids, int(id))
			}
			return ids
		}
	}
	start := len(ids)
	if len(piece) > maxQuadraticPiece {
		ids = tab.bpeLong(ids, piece)
	} else {
		ids = tab.bpe(ids, piece)
	}
	if cacheable {
		toks := make([]int32, len(ids)-start)
		for k, id := range ids[start:] {
			toks[k] = int32(id)
		}
		tab.cache.put(piece, toks)
	}
	return ids
}

// bpe appends the BPE encoding of piece to ids: starting from single bytes,
// repeatedly merge the adjacent pair with the lowest merge rank, the leftmost
// one if it occurs more than once, until no pair has a merge. This gives the
// same result as OpenAI's encoder, which merges all occurrences of the best
// pair in one pass, because a merge's result only appears in merges of higher
// rank.
func (tab *tables) bpe(ids []int, piece string) []int {
	var symBuf [maxQuadraticPiece]int32
	var valBuf [maxQuadraticPiece]uint64
	n := len(piece)
	syms, vals := symBuf[:n], valBuf[:n]
	for i := range n {
		syms[i] = tab.byteID[piece[i]]
	}
	// vals[i] is the merge value of the pair (syms[i], syms[i+1]).
	for i := range n - 1 {
		vals[i] = tab.merges.get(syms[i], syms[i+1])
	}
	vals[n-1] = noMerge
	for n > 1 {
		m, best := 0, vals[0]
		for k := 1; k < n-1; k++ {
			if vals[k] < best {
				m, best = k, vals[k]
			}
		}
		if best == noMerge {
			break
		}
		syms[m] = int32(uint32(best))
		copy(syms[m+1:n], syms[m+2:n])
		copy(vals[m+1:n], vals[m+2:n])
		n--
		if m+1 < n {
			vals[m] = tab.merges.get(syms[m], syms[m+1])
		} else {
			vals[m] = noMerge
		}
		if m > 0 {
			vals[m-1] = tab.merges.get(syms[m-1], syms[m])
		}
	}
	for _, id := range syms[:n] {
		ids = append(ids, int(id))
	}
	return ids
}

// bpeLong is bpe for long pieces: the symbols form a linked list and the
// candidate merges a heap ordered by (merge value, position), with entries
// made stale by earlier merges skipped when popped.
func (tab *tables) bpeLong(ids []int, piece string) []int {
	n := len(piece)
	syms := make([]int32, n) // -1 once merged into its left neighbour
	next := make([]int32, n) // -1 at the end
	prev := make([]int32, n) // -1 at the start
	for i := range n {
		syms[i] = tab.byteID[piece[i]]
		next[i] = int32(i + 1)
		prev[i] = int32(i - 1)
	}
	next[n-1] = -1
	h := make(mergeHeap, 0, n)
	for i := range n - 1 {
		if v := tab.merges.get(syms[i], syms[i+1]); v != noMerge {
			h.push(mergeCand{v, int32(i)})
		}
	}
	for len(h) > 0 {
		c := h.pop()
		l := c.pos
		if syms[l] < 0 {
			continue
		}
		r := next[l]
		if r < 0 || tab.merges.get(syms[l], syms[r]) != c.val {
			continue
		}
		syms[l], syms[r] = int32(uint32(c.val)), -1
		next[l] = next[r]
		if q := next[l]; q >= 0 {
			prev[q] = l
			if v := tab.merges.get(syms[l], syms[q]); v != noMerge {
				h.push(mergeCand{v, l})
			}
		}
		if p := prev[l]; p >= 0 {
			if v := tab.merges.get(syms[p], syms[l]); v != noMerge {
				h.push(mergeCand{v, p})
			}
		}
	}
	for i := int32(0); i >= 0; i = next[i] {
		ids = append(ids, int(syms[i]))
	}
	return ids
}

// mergeCand is a possible merge of the symbol at pos with its right neighbour.
type mergeCand struct {
	val uint64
	pos int32
}

func (a mergeCand) less(b mergeCand) bool {
	return a.val < b.val || a.val == b.val && a.pos < b.pos
}

// mergeHeap is a binary min-heap; container/heap would box every element.
type mergeHeap []mergeCand

func (h *mergeHeap) push(c mergeCand) {
	s := append(*h, c)
	for i := len(s) - 1; i > 0; {
		p := (i - 1) / 2
		if !s[i].less(s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
	*h = s
}

func (h *mergeHeap) pop() mergeCand {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		l := 2*i + 1
		if l >= len(s) {
			break
		}
		m := l
		if r := l + 1; r < len(s) && s[r].less(s[l]) {
			m = r
		}
		if !s[m].less(s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	*h = s
	return top
}

// Cache bounds. The cache only holds pre-tokens that are not whole tokens;
// a full shard is simply cleared, which is cheap and keeps memory bounded
// whatever text a long-running server sees.
const (
	maxCachedPiece = 64
	cacheShards    = 64
	maxShardLen    = 2048
)

// bpeCache memoizes BPE results by pre-token. It is sharded so that
// concurrent encoders rarely contend for a lock.
type bpeCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
	_  [32]byte // keep shards on separate cache lines
}

func newBPECache() bpeCache { return bpeCache{seed: maphash.MakeSeed()} }

func (c *bpeCache) shard(piece string) *cacheShard {
	return &c.shards[maphash.String(c.seed, piece)%cacheShards]
}

func (c *bpeCache) get(piece string) ([]int32, bool) {
	s := c.shard(piece)
	s.mu.RLock()
	v, ok := s.m[piece]
	s.mu.RUnlock()
	return v, ok
}

func (c *bpeCache) put(piece string, toks []int32) {
	s := c.shard(piece)
	s.mu.Lock()
	if s.m == nil || len(s.m) >= maxShardLen {
		s.m = make(map[string][]int32)
	}
	// Clone so the cache does not keep the caller's whole text alive.
	s.m[strings.Clone(piece)] = toks
	s.mu.Unlock()
}
