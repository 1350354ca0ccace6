package tokenizer

import "unicode/utf8"

// A StreamDecoder decodes a stream of token ids into text as they arrive,
// such as a model's output while it is generated. A character whose UTF-8
// bytes are split across tokens (common for emoji and CJK) is held back until
// it is complete, so each piece of text returned is whole.
//
// Bytes are passed through as-is, never replaced by U+FFFD: the text returned
// by Add and Flush, concatenated, is exactly what Decode returns for the same
// ids. Only a tail that could still become a valid character is held back, so
// bytes that can never form one (a stray continuation byte, say) come out
// with the text around them.
//
// A StreamDecoder is not safe for concurrent use.
type StreamDecoder struct {
	tab     *tables
	pending []byte // the start of an incomplete UTF-8 sequence
}

// NewStreamDecoder returns a StreamDecoder for t's vocabulary.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder {
	return &StreamDecoder{tab: t.tables()}
}

// Add decodes one more token and returns the text it completes, which may be
// empty. An unknown id is an error and leaves d unchanged.
func (d *StreamDecoder) Add(id int) (string, error) {
	b, err := d.tab.token(id)
	if err != nil {
		return "", err
	}
	if len(d.pending) == 0 {
		// Common case: return a piece of the token itself, without copying.
		var tail [3]byte
		k := copy(tail[:], b[max(0, len(b)-len(tail)):])
		n := len(b) - incompleteTail(tail[:k])
		d.pending = append(d.pending, b[n:]...)
		return b[:n], nil
	}
	d.pending = append(d.pending, b...)
	n := len(d.pending) - incompleteTail(d.pending)
	out := string(d.pending[:n])
	d.pending = append(d.pending[:0], d.pending[n:]...)
	return out, nil
}

// Flush returns the bytes held back, as they are (so possibly invalid UTF-8),
// and resets d for a new stream. Call it at the end of the stream.
func (d *StreamDecoder) Flush() string {
	out := string(d.pending)
	d.pending = d.pending[:0]
	return out
}

// Buffered reports how many bytes d is holding back.
func (d *StreamDecoder) Buffered() int { return len(d.pending) }

// incompleteTail returns the length of the longest suffix of b that is a
// proper prefix of a valid UTF-8 encoding, so more bytes could complete it.
func incompleteTail(b []byte) int {
	// A UTF-8 sequence is at most 4 bytes, so an incomplete one at most 3.
	for i := len(b) - 1; i >= 0 && i >= len(b)-3; i-- {
		c := b[i]
		if c < utf8.RuneSelf {
			return 0
		}
		if utf8.RuneStart(c) {
			// FullRune reports invalid starts as complete (width-1 errors),
			// so only real prefixes of a character are held back.
			if !utf8.FullRune(b[i:]) {
				return len(b) - i
			}
			return 0
		}
	}
	return 0
}
