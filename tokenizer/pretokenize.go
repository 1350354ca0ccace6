package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Character classes of GPT-2's pre-tokenizer pattern.
const (
	classOther  = iota // [^\s\p{L}\p{N}], invalid UTF-8 bytes included
	classLetter        // \p{L}
	classNumber        // \p{N}
	classSpace         // \s: the Unicode White_Space property
)

// asciiClass classifies ASCII bytes without decoding runes.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range utf8.RuneSelf {
		t[c] = classifyRune(rune(c))
	}
	return t
}()

// classifyRune classifies r; utf8.RuneError stands for an invalid byte as well
// as for U+FFFD itself, both of which are "other".
func classifyRune(r rune) uint8 {
	switch {
	case isSpace(r):
		return classSpace
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	}
	return classOther
}

// isSpace reports whether r has the Unicode White_Space property, which is
// what \s means in the regex engines GPT-2's tokenizers use. It differs from
// ECMAScript's \s, which includes U+FEFF and omits U+0085.
func isSpace(r rune) bool {
	switch {
	case r <= 0xFF:
		return r == ' ' || '\t' <= r && r <= '\r' || r == 0x85 || r == 0xA0
	case r < 0x1680:
		return false
	case 0x2000 <= r && r <= 0x200A:
		return true
	}
	switch r {
	case 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
		return true
	}
	return false
}

// classAt returns the class of the character starting at s[i] and its width
// in bytes. An invalid byte is a one-byte character of class other.
func classAt(s string, i int) (class uint8, width int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	return classifyRune(r), w
}

// runEnd returns the end of the run of characters of class cls that starts
// at s[i].
func runEnd(s string, i int, cls uint8) int {
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if asciiClass[c] != cls {
				return i
			}
			i++
			continue
		}
		c, w := classAt(s, i)
		if c != cls {
			return i
		}
		i += w
	}
	return i
}

// nextPiece returns the end of the pre-token that starts at s[i], i < len(s),
// following GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// alternative by alternative: at each position the first alternative that
// matches wins, and each is greedy.
func nextPiece(s string, i int) int {
	c := s[i]
	if c == '\'' && i+1 < len(s) {
		// Contractions, case-sensitive. They win over the other class even
		// when more letters follow: "'sun" is "'s", "un".
		switch s[i+1] {
		case 's', 't', 'm', 'd':
			return i + 2
		case 'r', 'v':
			if i+2 < len(s) && s[i+2] == 'e' {
				return i + 3
			}
		case 'l':
			if i+2 < len(s) && s[i+2] == 'l' {
				return i + 3
			}
		}
	}
	// " ?" is an optional U+0020 before a letter, number or other run.
	j := i
	if c == ' ' && i+1 < len(s) {
		if cls, _ := classAt(s, i+1); cls != classSpace {
			return runEnd(s, i+1, cls)
		}
	}
	cls, w := classAt(s, j)
	if cls != classSpace {
		return runEnd(s, j+w, cls)
	}
	// Whitespace. \s+(?!\S) takes the whole run at the end of the text, and
	// otherwise all of it but the last character, which goes to the next
	// pre-token (so " word" keeps its space); a single whitespace character
	// before a non-space falls through to \s+ and stands alone.
	last := j
	j += w
	for j < len(s) {
		cls, w := classAt(s, j)
		if cls != classSpace {
			if last > i {
				return last
			}
			return j
		}
		last = j
		j += w
	}
	return j
}
