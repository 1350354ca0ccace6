// Package tokenizer implements GPT-2's byte-level byte-pair encoding, producing
// exactly the token ids of OpenAI's "gpt2" encoding (tiktoken's r50k_base).
//
// The GPT-2 vocabulary is embedded in the binary and parsed on first use, so
// programs that never tokenize do not pay for it. A [Tokenizer] is safe for
// concurrent use by multiple goroutines.
//
// Text is split into pre-tokens with GPT-2's pattern
//
//	's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// where \s is the Unicode White_Space property, and each pre-token's UTF-8
// bytes are merged by rank. Decoding concatenates the tokens' bytes, so any
// byte string, valid UTF-8 or not, survives an Encode/Decode round trip.
package tokenizer

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
)

// EndOfText is the id of GPT-2's "<|endoftext|>" token, which separates
// documents.
const EndOfText = 50256

// The vocabulary files of OpenAI's GPT-2 release; see LICENSE-gpt2-vocab.
var (
	//go:embed encoder.json
	embeddedEncoder string
	//go:embed vocab.bpe
	embeddedMerges string
)

// File names of the two on-disk conventions. Hugging Face names come first,
// both for loading and for WriteFiles.
const (
	hfVocabFile     = "vocab.json"
	hfMergesFile    = "merges.txt"
	openaiVocabFile = "encoder.json"
	openaiMergeFile = "vocab.bpe"
)

// A Tokenizer converts between text and GPT-2 token ids. Its methods are safe
// for concurrent use.
type Tokenizer struct {
	once sync.Once
	load func() *tables // set for the lazily parsed default; nil afterwards
	tab  *tables
}

// tables is the parsed, immutable state of a Tokenizer plus its BPE cache.
type tables struct {
	vocabJSON string // the vocabulary and merges exactly as read, for WriteFiles
	mergesTxt string

	// tokens holds the bytes of each token id.
	tokens tokenStore
	// encoder maps the bytes of every token that BPE can produce to its id.
	// Tokens BPE cannot produce (such as <|endoftext|>) are kept out of it so
	// that a pre-token that happens to spell one is still merged normally.
	encoder tokenTable
	// special holds the remaining vocabulary entries, keyed by their bytes.
	special map[string]int32
	// specialText lists the special tokens that look like <|...|>, longest
	// first, for EncodeSpecial.
	specialText []string
	// byteID is the id of each single-byte token, where BPE starts.
	byteID [256]int32
	// merges maps a pair of adjacent token ids to the merge's rank and result.
	merges pairMap

	cache bpeCache
}

var defaultTokenizer = &Tokenizer{load: func() *tables {
	tab, err := parse(embeddedEncoder, embeddedMerges, openaiVocabFile, openaiMergeFile)
	if err != nil {
		panic("tokenizer: embedded vocabulary: " + err.Error())
	}
	return tab
}}

// Default returns the tokenizer for GPT-2's own vocabulary, which is embedded
// in the binary. It is shared and cheap to call; the vocabulary is parsed the
// first time it is used.
func Default() *Tokenizer { return defaultTokenizer }

// tables returns t's parsed state, parsing the embedded vocabulary on first use.
func (t *Tokenizer) tables() *tables {
	t.once.Do(func() {
		if t.load != nil {
			t.tab = t.load()
			t.load = nil
		}
	})
	return t.tab
}

// LoadDir returns the tokenizer described by the vocabulary files in dir:
// vocab.json and merges.txt (Hugging Face names) or encoder.json and vocab.bpe
// (OpenAI names), in that order of preference. A directory with neither pair
// gets Default(), and so do files byte-identical to GPT-2's, which then share
// its tables. Only one file of a pair is an error. Errors name the offending
// file.
func LoadDir(dir string) (*Tokenizer, error) {
	for _, names := range [][2]string{{hfVocabFile, hfMergesFile}, {openaiVocabFile, openaiMergeFile}} {
		vocabPath := filepath.Join(dir, names[0])
		mergesPath := filepath.Join(dir, names[1])
		vocabOK, err := exists(vocabPath)
		if err != nil {
			return nil, err
		}
		mergesOK, err := exists(mergesPath)
		if err != nil {
			return nil, err
		}
		if !vocabOK && !mergesOK {
			continue
		}
		// With one file of the pair present, reading the other reports it missing.
		vocab, err := readFile(vocabPath)
		if err != nil {
			return nil, err
		}
		merges, err := readFile(mergesPath)
		if err != nil {
			return nil, err
		}
		return Load(vocab, merges, vocabPath, mergesPath)
	}
	return Default(), nil
}

// Load returns the tokenizer for a vocabulary (a JSON object mapping GPT-2's
// byte-level unicode strings to ids) and a merge list (one "left right" pair
// per line, highest priority first, optionally preceded by a "#version" line).
// The names are used in error messages only.
//
// Merges whose parts or result are missing from the vocabulary are ignored.
// Vocabulary entries that no merge produces (other than single bytes), such as
// <|endoftext|>, are special tokens: Encode treats their text as ordinary text
// and EncodeSpecial encodes those spelled <|...|> as their ids.
func Load(vocab, merges []byte, vocabName, mergesName string) (*Tokenizer, error) {
	if string(vocab) == embeddedEncoder && string(merges) == embeddedMerges {
		return Default(), nil
	}
	tab, err := parse(string(vocab), string(merges), vocabName, mergesName)
	if err != nil {
		return nil, err
	}
	return &Tokenizer{tab: tab}, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, fmt.Errorf("tokenizer: read %s: %w", path, err)
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", path, err)
	}
	return b, nil
}

// WriteFiles writes the vocabulary as vocab.json and merges.txt (Hugging Face
// names) into dir, byte for byte as they were loaded, so that LoadDir(dir)
// gives back an equivalent tokenizer.
func (t *Tokenizer) WriteFiles(dir string) error {
	tab := t.tables()
	for _, f := range []struct{ name, data string }{
		{hfVocabFile, tab.vocabJSON},
		{hfMergesFile, tab.mergesTxt},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.data), 0o644); err != nil {
			return fmt.Errorf("tokenizer: write %s: %w", path, err)
		}
	}
	return nil
}

// VocabSize returns the number of token ids, one more than the largest id in
// the vocabulary (50257 for GPT-2).
func (t *Tokenizer) VocabSize() int { return len(t.tables().tokens.offs) - 1 }

// TokenID returns the id of the token whose bytes are tok, special tokens
// such as "<|endoftext|>" included.
func (t *Tokenizer) TokenID(tok string) (int, bool) {
	tab := t.tables()
	if id, ok := tab.encoder.get(tok); ok {
		return int(id), true
	}
	id, ok := tab.special[tok]
	return int(id), ok
}

// SpecialTokens returns the special tokens that EncodeSpecial recognises,
// such as "<|endoftext|>".
func (t *Tokenizer) SpecialTokens() []string {
	return slices.Clone(t.tables().specialText)
}

// Encode returns the token ids of text. Special tokens such as
// "<|endoftext|>" get no special treatment: their text is encoded like any
// other, as OpenAI's GPT-2 encoder does. Invalid UTF-8 is encoded byte for
// byte, so DecodeBytes gives back exactly text's bytes.
func (t *Tokenizer) Encode(text string) []int {
	// English averages 3 to 4.5 bytes per token; growing is cheap if wrong.
	return t.tables().encode(make([]int, 0, len(text)/3+1), text)
}

// AppendEncode appends the token ids of text to ids, as Encode, and returns
// the extended slice.
func (t *Tokenizer) AppendEncode(ids []int, text string) []int {
	return t.tables().encode(ids, text)
}

// EncodeSpecial is like Encode, except that the vocabulary's special tokens
// spelled <|...|>, such as "<|endoftext|>", become their ids. Use it only on
// trusted text: it lets the text forge document boundaries.
func (t *Tokenizer) EncodeSpecial(text string) []int {
	tab := t.tables()
	ids := make([]int, 0, len(text)/3+1)
	for {
		i, tok := tab.findSpecial(text)
		if i < 0 {
			return tab.encode(ids, text)
		}
		ids = tab.encode(ids, text[:i])
		ids = append(ids, int(tab.special[tok]))
		text = text[i+len(tok):]
	}
}

// findSpecial returns the index and text of the leftmost special token in s,
// the longest one where several start at the same place, or -1.
func (tab *tables) findSpecial(s string) (int, string) {
	if len(tab.specialText) == 0 {
		return -1, ""
	}
	off := 0
	for {
		i := strings.Index(s[off:], "<|")
		if i < 0 {
			return -1, ""
		}
		off += i
		for _, tok := range tab.specialText {
			if strings.HasPrefix(s[off:], tok) {
				return off, tok
			}
		}
		off++
	}
}

// Decode returns the text of ids: the concatenation of their bytes. The bytes
// are not validated, so a token sequence that splits a UTF-8 sequence, or that
// came from invalid UTF-8, yields the same bytes rather than U+FFFD. Unknown
// ids are an error.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	tab := t.tables()
	n, err := tab.decodedLen(ids)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, id := range ids {
		sb.WriteString(tab.tokens.token(id))
	}
	return sb.String(), nil
}

// DecodeBytes is like Decode but returns bytes.
func (t *Tokenizer) DecodeBytes(ids []int) ([]byte, error) {
	return t.AppendDecode(nil, ids)
}

// AppendDecode appends the bytes of ids to dst, as DecodeBytes, and returns
// the extended slice. On error dst is returned unchanged.
func (t *Tokenizer) AppendDecode(dst []byte, ids []int) ([]byte, error) {
	tab := t.tables()
	n, err := tab.decodedLen(ids)
	if err != nil {
		return dst, err
	}
	dst = slices.Grow(dst, n)
	for _, id := range ids {
		dst = append(dst, tab.tokens.token(id)...)
	}
	return dst, nil
}

// TokenBytes returns a copy of the bytes of token id.
func (t *Tokenizer) TokenBytes(id int) ([]byte, error) {
	b, err := t.tables().token(id)
	if err != nil {
		return nil, err
	}
	return []byte(b), nil
}

// UnknownTokenError reports a token id outside the vocabulary.
type UnknownTokenError struct {
	ID        int
	VocabSize int
}

func (e *UnknownTokenError) Error() string {
	return fmt.Sprintf("tokenizer: unknown token id %d (vocabulary size %d)", e.ID, e.VocabSize)
}

// decodedLen returns the length of the text of ids, or an error for the
// first unknown id.
func (tab *tables) decodedLen(ids []int) (int, error) {
	n := 0
	for _, id := range ids {
		b, err := tab.token(id)
		if err != nil {
			return 0, err
		}
		n += len(b)
	}
	return n, nil
}

func (tab *tables) token(id int) (string, error) {
	b := tab.tokens.token(id)
	if b == "" {
		return "", &UnknownTokenError{ID: id, VocabSize: len(tab.tokens.offs) - 1}
	}
	return b, nil
}
