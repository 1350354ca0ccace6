package tokenizer

import "math/bits"

// tokenStore holds the bytes of every token, concatenated in id order, so
// that decoding touches two small arrays rather than one slice header per
// token.
type tokenStore struct {
	text string
	offs []uint32 // token id's bytes are text[offs[id]:offs[id+1]]
}

// token returns the bytes of id, or "" for an id outside the vocabulary
// (tokens are never empty).
func (s *tokenStore) token(id int) string {
	if id < 0 || id >= len(s.offs)-1 {
		return ""
	}
	return s.text[s.offs[id]:s.offs[id+1]]
}

// tokenTable maps token bytes to ids. It replaces a map[string]int32 on the
// encoder's hot path, where every pre-token is looked up: most are at most
// 8 bytes long, so they hash and compare as a single integer.
type tokenTable struct {
	slots  []tokenSlot
	shift  uint        // 64 - log2(len(slots))
	store  *tokenStore // bytes of tokens longer than 8 bytes, for comparison
	maxLen int
}

type tokenSlot struct {
	prefix uint64 // the first 8 bytes, little-endian, zero-padded
	n      uint32 // length in bytes; 0 marks a free slot
	id     int32
}

// load64 returns the first 8 bytes of s, little-endian, zero-padded.
func load64(s string) uint64 {
	if len(s) >= 8 {
		_ = s[7] // one bounds check; the compiler merges the loads
		return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	}
	var v uint64
	for i := len(s) - 1; i >= 0; i-- {
		v = v<<8 | uint64(s[i])
	}
	return v
}

func (t *tokenTable) slot(s string, prefix uint64) uint64 {
	h := prefix ^ uint64(len(s))<<56 ^ uint64(len(s))
	if len(s) > 8 {
		h = bits.RotateLeft64(h*0xC2B2AE3D27D4EB4F, 31) ^ load64(s[len(s)-8:])
	}
	h *= 0x9E3779B97F4A7C15
	h ^= h >> 32
	h *= 0xD6E8FEB86659FD93
	return h >> t.shift
}

func newTokenTable(store *tokenStore, n int) tokenTable {
	logSize := max(bits.Len(uint(n))+1, 4) // load factor at most 1/2
	return tokenTable{
		slots: make([]tokenSlot, 1<<logSize),
		shift: uint(64 - logSize),
		store: store,
	}
}

// add maps the bytes of token id to id; they must not be in t already.
func (t *tokenTable) add(id int32) {
	s := t.store.token(int(id))
	prefix := load64(s)
	mask := uint64(len(t.slots) - 1)
	i := t.slot(s, prefix)
	for t.slots[i].n != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = tokenSlot{prefix: prefix, n: uint32(len(s)), id: id}
	t.maxLen = max(t.maxLen, len(s))
}

// get returns the id of the token whose bytes are s.
func (t *tokenTable) get(s string) (int32, bool) {
	if len(s) == 0 || len(s) > t.maxLen {
		return 0, false
	}
	prefix := load64(s)
	n := uint32(len(s))
	mask := uint64(len(t.slots) - 1)
	for i := t.slot(s, prefix); ; i = (i + 1) & mask {
		sl := &t.slots[i]
		if sl.n == 0 {
			return 0, false
		}
		if sl.prefix == prefix && sl.n == n && (n <= 8 || t.store.token(int(sl.id)) == s) {
			return sl.id, true
		}
	}
}
