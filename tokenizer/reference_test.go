package tokenizer

import (
	"encoding/json"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// A deliberately simple reference encoder, written independently of the fast
// one: it reads the embedded files with encoding/json, transliterates the
// pre-tokenizer pattern alternative by alternative over a slice of
// characters, and runs OpenAI's encoder.py BPE loop on strings. The fixture
// test checks it against the expected ids; the fuzzers check the fast encoder
// against it.

type refTables struct {
	encoder map[string]int    // token bytes -> id
	ranks   map[[2]string]int // merge pair (as bytes) -> rank
}

var refOnce = sync.OnceValue(func() *refTables {
	var enc map[string]int
	if err := json.Unmarshal([]byte(embeddedEncoder), &enc); err != nil {
		panic(err)
	}
	toBytes := func(s string) string {
		var b []byte
		for _, r := range s {
			b = append(b, byte(unicodeToByte[r]))
		}
		return string(b)
	}
	ref := &refTables{encoder: make(map[string]int), ranks: make(map[[2]string]int)}
	for k, v := range enc {
		ref.encoder[toBytes(k)] = v
	}
	lines := strings.Split(strings.TrimSpace(embeddedMerges), "\n")[1:] // skip #version
	for i, line := range lines {
		f := strings.Fields(line)
		ref.ranks[[2]string{toBytes(f[0]), toBytes(f[1])}] = i
	}
	return ref
})

type refChar struct {
	s string // the character's bytes; one byte if invalid UTF-8
	r rune   // utf8.RuneError for an invalid byte
}

func refSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

func refLetter(r rune) bool {
	return unicode.In(r, unicode.Lu, unicode.Ll, unicode.Lt, unicode.Lm, unicode.Lo)
}

func refNumber(r rune) bool { return unicode.In(r, unicode.Nd, unicode.Nl, unicode.No) }

func refOther(r rune) bool { return !refSpace(r) && !refLetter(r) && !refNumber(r) }

// referencePieces splits text with
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
func referencePieces(text string) []string {
	var cs []refChar
	for i := 0; i < len(text); {
		r, w := utf8.DecodeRuneInString(text[i:])
		cs = append(cs, refChar{text[i : i+w], r})
		i += w
	}
	run := func(p int, pred func(rune) bool) int { // length of the run at p
		n := 0
		for p+n < len(cs) && pred(cs[p+n].r) {
			n++
		}
		return n
	}
	optSpaceRun := func(p int, pred func(rune) bool) int { // " ?X+"
		if cs[p].r == ' ' && p+1 < len(cs) {
			if n := run(p+1, pred); n > 0 {
				return n + 1
			}
		}
		return run(p, pred)
	}
	var pieces []string
	for p := 0; p < len(cs); {
		n := 0
		for _, c := range []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"} {
			if k := len(c); p+k <= len(cs) {
				var sb strings.Builder
				for _, ch := range cs[p : p+k] {
					sb.WriteString(ch.s)
				}
				if sb.String() == c {
					n = k
					break
				}
			}
		}
		for _, pred := range []func(rune) bool{refLetter, refNumber, refOther} {
			if n == 0 {
				n = optSpaceRun(p, pred)
			}
		}
		if n == 0 { // \s+(?!\S), backtracking
			for k := run(p, refSpace); k > 0; k-- {
				if p+k == len(cs) || refSpace(cs[p+k].r) {
					n = k
					break
				}
			}
		}
		if n == 0 { // \s+
			n = run(p, refSpace)
		}
		if n == 0 {
			panic("no alternative matched")
		}
		var sb strings.Builder
		for _, ch := range cs[p : p+n] {
			sb.WriteString(ch.s)
		}
		pieces = append(pieces, sb.String())
		p += n
	}
	return pieces
}

// referenceBPE is encoder.py's bpe: repeatedly merge every occurrence of the
// lowest-ranked pair.
func referenceBPE(ref *refTables, piece string) []string {
	word := make([]string, len(piece))
	for i := 0; i < len(piece); i++ {
		word[i] = piece[i : i+1]
	}
	for len(word) > 1 {
		best, bestRank := [2]string{}, -1
		for i := 0; i+1 < len(word); i++ {
			p := [2]string{word[i], word[i+1]}
			if r, ok := ref.ranks[p]; ok && (bestRank < 0 || r < bestRank) {
				best, bestRank = p, r
			}
		}
		if bestRank < 0 {
			break
		}
		var next []string
		for i := 0; i < len(word); {
			if i+1 < len(word) && word[i] == best[0] && word[i+1] == best[1] {
				next = append(next, best[0]+best[1])
				i += 2
			} else {
				next = append(next, word[i])
				i++
			}
		}
		word = next
	}
	return word
}

func referenceEncode(text string) []int {
	ref := refOnce()
	ids := []int{}
	for _, piece := range referencePieces(text) {
		for _, tok := range referenceBPE(ref, piece) {
			ids = append(ids, ref.encoder[tok])
		}
	}
	return ids
}
