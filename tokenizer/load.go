package tokenizer

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// GPT-2's vocabulary files spell each byte as a printable character so that
// tokens are readable JSON strings: printable Latin-1 bytes stand for
// themselves and the rest map to U+0100 upwards, in byte order (so the space
// 0x20 is written 'Ġ', U+0120). unicodeToByte inverts that mapping; -1 marks
// characters that do not stand for a byte.
var unicodeToByte = func() (t [0x100 + 68]int16) {
	for i := range t {
		t[i] = -1
	}
	n := 0
	for b := range 256 {
		if '!' <= b && b <= '~' || 0xA1 <= b && b <= 0xAC || 0xAE <= b && b <= 0xFF {
			t[b] = int16(b)
		} else {
			t[0x100+n] = int16(b)
			n++
		}
	}
	return t
}()

// appendTokenBytes appends the byte that r stands for. A character outside
// the mapping, which only hand-added tokens contain, stands for its own UTF-8
// encoding.
func appendTokenBytes(dst []byte, r rune) []byte {
	if 0 <= r && int(r) < len(unicodeToByte) && unicodeToByte[r] >= 0 {
		return append(dst, byte(unicodeToByte[r]))
	}
	return utf8.AppendRune(dst, r)
}

// parse builds a tokenizer's tables from the text of its vocabulary and merge
// files. The names are for error messages.
func parse(vocab, merges, vocabName, mergesName string) (*tables, error) {
	tab := &tables{vocabJSON: vocab, mergesTxt: merges, cache: newBPECache()}
	if len(vocab) > math.MaxInt32 {
		// Offsets into the token bytes are 32-bit.
		return nil, fmt.Errorf("tokenizer: parse %s: file too large", vocabName)
	}

	// Collect every key's bytes in one buffer, in file order.
	var keyBytes []byte
	type entry struct{ off, end int32 }
	var byID []entry // by token id; end == 0 marks an unused id
	count := 0
	err := parseVocab(vocab, &keyBytes, func(off, end, id int) error {
		if id < 0 || id >= 1<<24 {
			return fmt.Errorf("token id %d out of range", id)
		}
		if off == end {
			return errors.New("empty token")
		}
		if id >= len(byID) {
			byID = append(byID, make([]entry, id+1-len(byID))...)
		}
		if byID[id].end == 0 {
			count++
		}
		byID[id] = entry{int32(off), int32(end)} // the last key for an id wins
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tokenizer: parse %s: %w", vocabName, err)
	}
	if count == 0 {
		return nil, fmt.Errorf("tokenizer: parse %s: empty vocabulary", vocabName)
	}

	// Lay the tokens out in id order.
	var sb strings.Builder
	sb.Grow(len(keyBytes))
	tab.tokens.offs = make([]uint32, len(byID)+1)
	for id, e := range byID {
		sb.Write(keyBytes[e.off:e.end])
		tab.tokens.offs[id+1] = uint32(sb.Len())
	}
	tab.tokens.text = sb.String()

	// all maps every token's bytes to its id; for two ids with the same
	// bytes, the lower id.
	all := newTokenTable(&tab.tokens, count)
	for id, e := range byID {
		if e.end != 0 {
			if _, dup := all.get(tab.tokens.token(id)); !dup {
				all.add(int32(id))
			}
		}
	}

	// mergeable marks the tokens BPE can produce: single bytes and merge results.
	mergeable := make([]bool, len(byID))
	for b := range 256 {
		id, ok := all.get(allBytes[b : b+1])
		if !ok {
			return nil, fmt.Errorf("tokenizer: parse %s: no token for byte %#02x", vocabName, b)
		}
		tab.byteID[b] = id
		mergeable[id] = true
	}

	if err := tab.parseMerges(merges, &all, mergeable); err != nil {
		return nil, fmt.Errorf("tokenizer: parse %s: %w", mergesName, err)
	}

	// Tokens no merge produces are special: kept out of the encoder so that
	// ordinary text never turns into them.
	nMergeable := 0
	for _, m := range mergeable {
		if m {
			nMergeable++
		}
	}
	tab.encoder = newTokenTable(&tab.tokens, nMergeable)
	tab.special = make(map[string]int32)
	for _, sl := range all.slots {
		if sl.n == 0 {
			continue
		}
		if mergeable[sl.id] {
			tab.encoder.add(sl.id)
			continue
		}
		tok := tab.tokens.token(int(sl.id))
		tab.special[tok] = sl.id
		if strings.HasPrefix(tok, "<|") && strings.HasSuffix(tok, "|>") && len(tok) > 4 {
			tab.specialText = append(tab.specialText, tok)
		}
	}
	slices.SortFunc(tab.specialText, func(a, b string) int {
		return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b))
	})
	return tab, nil
}

// allBytes holds every byte value once, so allBytes[b:b+1] is the one-byte
// string b.
var allBytes = func() string {
	var b [256]byte
	for i := range b {
		b[i] = byte(i)
	}
	return string(b[:])
}()

// parseMerges fills tab.merges from a merge list: one "left right" pair per
// line, highest priority first, optionally after a "#version" line.
func (tab *tables) parseMerges(merges string, vocab *tokenTable, mergeable []bool) error {
	tab.merges = newPairMap(strings.Count(merges, "\n") + 1)
	var buf []byte
	rank := 0
	for lineNo := 1; merges != ""; lineNo++ {
		line, rest, _ := strings.Cut(merges, "\n")
		merges = rest
		line = strings.TrimSuffix(line, "\r")
		if line == "" || lineNo == 1 && strings.HasPrefix(line, "#version") {
			continue
		}
		left, right, ok := strings.Cut(line, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return fmt.Errorf("line %d: want two space-separated tokens, got %q", lineNo, line)
		}
		buf = buf[:0]
		for _, r := range left {
			buf = appendTokenBytes(buf, r)
		}
		split := len(buf)
		for _, r := range right {
			buf = appendTokenBytes(buf, r)
		}
		a, okA := vocab.get(string(buf[:split]))
		b, okB := vocab.get(string(buf[split:]))
		m, okM := vocab.get(string(buf))
		if okA && okB && okM {
			if tab.merges.add(pairKey(a, b), uint64(rank)<<32|uint64(uint32(m))) {
				mergeable[m] = true
			}
		}
		rank++
	}
	return nil
}

// parseVocab parses a JSON object whose values are integers, such as
// {"!": 0, "\"": 1}. It appends the bytes each key stands for (see
// unicodeToByte) to *keys and calls fn with their extent and the value.
// A dedicated parser is several times faster than encoding/json here, which
// matters because the embedded vocabulary is parsed on first use.
func parseVocab(s string, keys *[]byte, fn func(off, end, id int) error) error {
	p := jsonScanner{s: s}
	if !p.consume('{') {
		return p.errorf("want '{'")
	}
	if p.consume('}') {
		return p.end()
	}
	for {
		off := len(*keys)
		if err := p.str(keys); err != nil {
			return err
		}
		if !p.consume(':') {
			return p.errorf("want ':'")
		}
		id, err := p.integer()
		if err != nil {
			return err
		}
		if err := fn(off, len(*keys), id); err != nil {
			return p.errorf("%v", err)
		}
		if p.consume(',') {
			continue
		}
		if p.consume('}') {
			return p.end()
		}
		return p.errorf("want ',' or '}'")
	}
}

type jsonScanner struct {
	s string
	i int
}

func (p *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *jsonScanner) skipSpace() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, if it comes next.
func (p *jsonScanner) consume(c byte) bool {
	p.skipSpace()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *jsonScanner) end() error {
	p.skipSpace()
	if p.i != len(p.s) {
		return p.errorf("unexpected data after the object")
	}
	return nil
}

func (p *jsonScanner) integer() (int, error) {
	p.skipSpace()
	start := p.i
	if p.i < len(p.s) && p.s[p.i] == '-' {
		p.i++
	}
	n := 0
	digits := 0
	for ; p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9'; p.i++ {
		if digits++; digits > 9 {
			return 0, p.errorf("integer too large")
		}
		n = n*10 + int(p.s[p.i]-'0')
	}
	if digits == 0 {
		p.i = start
		return 0, p.errorf("want an integer")
	}
	if p.s[start] == '-' {
		n = -n
	}
	return n, nil
}

// str parses a JSON string and appends the token bytes it spells to *out.
// Like encoding/json, it turns invalid UTF-8 and unpaired surrogates into
// U+FFFD.
func (p *jsonScanner) str(out *[]byte) error {
	if !p.consume('"') {
		return p.errorf("want a string")
	}
	b := *out
	for {
		if p.i >= len(p.s) {
			return p.errorf("unterminated string")
		}
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			*out = b
			return nil
		case c < 0x20:
			return p.errorf("control character in string")
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return err
			}
			b = appendTokenBytes(b, r)
		case c < utf8.RuneSelf:
			b = appendTokenBytes(b, rune(c))
			p.i++
		default:
			r, w := utf8.DecodeRuneInString(p.s[p.i:])
			b = appendTokenBytes(b, r)
			p.i += w
		}
	}
}

// escape parses the escape sequence at p.s[p.i], a backslash.
func (p *jsonScanner) escape() (rune, error) {
	if p.i+1 >= len(p.s) {
		return 0, p.errorf("unterminated string")
	}
	c := p.s[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return 0, p.errorf("bad \\u escape")
		}
		if 0xD800 <= r && r < 0xDC00 && strings.HasPrefix(p.s[p.i:], `\u`) {
			save := p.i
			p.i += 2
			if r2, ok := p.hex4(); ok && 0xDC00 <= r2 && r2 < 0xE000 {
				return 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00), nil
			}
			p.i = save
		}
		if 0xD800 <= r && r < 0xE000 {
			return utf8.RuneError, nil
		}
		return r, nil
	}
	p.i--
	return 0, p.errorf("bad escape \\%c", c)
}

func (p *jsonScanner) hex4() (rune, bool) {
	if p.i+4 > len(p.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	p.i += 4
	return r, true
}
