package tokenizer

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func pieces(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

func TestPreTokenizer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		// Contractions: lower case only, and they win over the other class.
		{"I'm", []string{"I", "'m"}},
		{"they're we've you'll he'd it's don't", []string{"they", "'re", " we", "'ve", " you", "'ll", " he", "'d", " it", "'s", " don", "'t"}},
		{"IT'S", []string{"IT", "'", "S"}},
		{"'sun", []string{"'s", "un"}},
		{"we'll've", []string{"we", "'ll", "'ve"}},
		{"''s", []string{"''", "s"}},
		{"?'s", []string{"?'", "s"}},
		{"x'", []string{"x", "'"}},
		{"'l", []string{"'", "l"}},
		// " ?" is U+0020 only, before letters, numbers or other symbols.
		{"Hello world 42 !!", []string{"Hello", " world", " 42", " !!"}},
		{"abc123def", []string{"abc", "123", "def"}},
		{"\tword", []string{"\t", "word"}},
		// Whitespace runs leave their last character to a following pre-token.
		{"a  b", []string{"a", " ", " b"}},
		{"a   b", []string{"a", "  ", " b"}},
		{"a\n\nb", []string{"a", "\n", "\n", "b"}},
		{"a \tb", []string{"a", " ", "\t", "b"}},
		{"a\t b", []string{"a", "\t", " b"}},
		{"a   ", []string{"a", "   "}},
		{"  ", []string{"  "}},
		{" ", []string{" "}},
		{"x\n", []string{"x", "\n"}},
		// Unicode White_Space: NEL and NBSP are spaces, U+FEFF is not.
		{"hello \u0085world", []string{"hello", " ", "\u0085", "world"}},
		{"a\u00a0b", []string{"a", "\u00a0", "b"}},
		{"a\u3000\u3000b", []string{"a", "\u3000", "\u3000", "b"}},
		{"\ufeffx", []string{"\ufeff", "x"}},
		{" \ufeff", []string{" \ufeff"}},
		// Letters and numbers beyond ASCII; invalid bytes are other symbols.
		{"naïve Ⅻ ½", []string{"naïve", " Ⅻ", " ½"}},
		{"日本語", []string{"日本語"}},
		{"a\xffb\xfe\xfd", []string{"a", "\xff", "b", "\xfe\xfd"}},
		{" \xff", []string{" \xff"}},
	} {
		if got := pieces(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("pieces(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
		if got := referencePieces(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("referencePieces(%+q) = %+q, want %+q", tc.in, got, tc.want)
		}
	}
}

func TestEncodeKnown(t *testing.T) {
	tok := Default()
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"", []int{}},
		{"Hello world", []int{15496, 995}},
		{"hello \u0085world", []int{31373, 220, 126, 227, 6894}},
		{"<|endoftext|>", []int{27, 91, 437, 1659, 5239, 91, 29}},
	} {
		if got := tok.Encode(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Encode(%+q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestEncodeSpecial(t *testing.T) {
	tok := Default()
	if got := tok.EncodeSpecial("<|endoftext|>"); !slices.Equal(got, []int{EndOfText}) {
		t.Errorf("EncodeSpecial(<|endoftext|>) = %v", got)
	}
	text := "a<|endoftext|> b<|endoftext|><|endoftext|><|unknown|>"
	var want []int
	want = append(want, tok.Encode("a")...)
	want = append(want, EndOfText)
	want = append(want, tok.Encode(" b")...)
	want = append(want, EndOfText, EndOfText)
	want = append(want, tok.Encode("<|unknown|>")...)
	if got := tok.EncodeSpecial(text); !slices.Equal(got, want) {
		t.Errorf("EncodeSpecial(%q) = %v, want %v", text, got, want)
	}
	if got := tok.Encode(text); slices.Contains(got, EndOfText) {
		t.Errorf("Encode(%q) = %v contains EndOfText", text, got)
	}
	if s, err := tok.Decode(tok.EncodeSpecial(text)); s != text || err != nil {
		t.Errorf("Decode(EncodeSpecial(%q)) = %q, %v", text, s, err)
	}
	if id, ok := tok.TokenID("<|endoftext|>"); id != EndOfText || !ok {
		t.Errorf("TokenID(<|endoftext|>) = %d, %v", id, ok)
	}
	if id, ok := tok.TokenID(" the"); id != 262 || !ok {
		t.Errorf("TokenID(\" the\") = %d, %v", id, ok)
	}
	if got := tok.SpecialTokens(); !slices.Equal(got, []string{"<|endoftext|>"}) {
		t.Errorf("SpecialTokens() = %q", got)
	}
}

func TestDecode(t *testing.T) {
	tok := Default()
	if n := tok.VocabSize(); n != 50257 {
		t.Errorf("VocabSize() = %d, want 50257", n)
	}
	for _, id := range []int{-1, 50257, 1 << 40} {
		_, err := tok.Decode([]int{15496, id})
		var ue *UnknownTokenError
		if !errors.As(err, &ue) || ue.ID != id {
			t.Errorf("Decode(%d): err = %v, want UnknownTokenError", id, err)
		}
		if err != nil && !strings.Contains(err.Error(), strconv.Itoa(id)) {
			t.Errorf("error %q does not name id %d", err, id)
		}
		if _, err := tok.TokenBytes(id); err == nil {
			t.Errorf("TokenBytes(%d) succeeded", id)
		}
	}
	b, err := tok.TokenBytes(220)
	if string(b) != " " || err != nil {
		t.Errorf("TokenBytes(220) = %q, %v", b, err)
	}
	b[0] = 'x' // a copy: must not corrupt the vocabulary
	if b, _ := tok.TokenBytes(220); string(b) != " " {
		t.Errorf("TokenBytes returned the vocabulary's own slice")
	}
	// A character split across tokens comes out whole.
	ids := tok.Encode("🤗")
	if len(ids) < 2 {
		t.Fatalf("Encode(🤗) = %v, want a split character", ids)
	}
	if s, err := tok.Decode(ids); s != "🤗" || err != nil {
		t.Errorf("Decode(%v) = %q, %v", ids, s, err)
	}
	if s, err := tok.Decode(nil); s != "" || err != nil {
		t.Errorf("Decode(nil) = %q, %v", s, err)
	}
}

func TestStreamDecoder(t *testing.T) {
	tok := Default()
	text := "Hi 🤗! 日本語のテキスト, naïve café 👩‍👩‍👧 end"
	d := tok.NewStreamDecoder()
	var got strings.Builder
	split := false
	for _, id := range tok.Encode(text) {
		s, err := d.Add(id)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.ValidString(s) {
			t.Errorf("Add(%d) = %+q, not valid UTF-8", id, s)
		}
		if s == "" {
			split = true
		}
		got.WriteString(s)
	}
	got.WriteString(d.Flush())
	if got.String() != text {
		t.Errorf("streamed %q, want %q", got.String(), text)
	}
	if !split {
		t.Errorf("no character of %q was split across tokens", text)
	}

	tab := tok.tables()
	id := func(b byte) int { return int(tab.byteID[b]) }
	add := func(id int, want string) {
		t.Helper()
		if s, err := d.Add(id); s != want || err != nil {
			t.Errorf("Add(%d) = %+q, %v; want %+q", id, s, err, want)
		}
	}
	// é = C3 A9, split by hand.
	add(id(0xC3), "")
	if n := d.Buffered(); n != 1 {
		t.Errorf("Buffered() = %d, want 1", n)
	}
	if _, err := d.Add(-5); err == nil {
		t.Error("Add(-5) succeeded")
	}
	add(id(0xA9), "é")
	// A stray continuation byte or an impossible lead byte cannot complete:
	// it is passed through at once.
	add(id(0x80), "\x80")
	add(id(0xC0), "\xc0")
	add(id(0xE0), "")
	add(id(0x80), "\xe0\x80") // E0 80 is never valid (overlong)
	// Flush hands back an incomplete tail as raw bytes.
	add(id(0xF0), "")
	add(id(0x9F), "")
	if s := d.Flush(); s != "\xf0\x9f" {
		t.Errorf("Flush() = %+q, want \"\\xf0\\x9f\"", s)
	}
	if s := d.Flush(); s != "" {
		t.Errorf("second Flush() = %+q", s)
	}
}

func TestIncompleteTail(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"a", 0}, {"é", 0}, {"a\xc3", 1}, {"\xe6\x97", 2}, {"\xe6", 1},
		{"\xf0\x9f\xa4", 3}, {"\xf0\x9f\xa4\x97", 0}, {"\x80\x80\x80", 0},
		{"\xed\xa0", 0}, // would be a surrogate
		{"\xf4\x90", 0}, // beyond U+10FFFF
		{"\xf8", 0}, {"\xc1", 0},
	} {
		if got := incompleteTail([]byte(tc.in)); got != tc.want {
			t.Errorf("incompleteTail(%+q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// byteToUnicode is the inverse of unicodeToByte, for writing test vocabularies.
func byteToUnicode() (m [256]rune) {
	for r, b := range unicodeToByte {
		if b >= 0 {
			m[b] = rune(r)
		}
	}
	return m
}

// tinyVocab returns a small vocabulary: the 256 bytes, merges for "hello",
// and two special tokens.
func tinyVocab() (vocab, merges string) {
	b2u := byteToUnicode()
	var sb strings.Builder
	sb.WriteString("{")
	for b := range 256 {
		sb.WriteString(strconv.Quote(string(b2u[b])) + ": " + strconv.Itoa(b) + ", ")
	}
	sb.WriteString(`"he": 256, "ll": 257, "hell": 258, "hello": 259, "\u0120h": 260,` +
		"\n  \"<|endoftext|>\": 300, \"<|pad|>\": 301}\n")
	return sb.String(), "#version: 0.2\nh e\nl l\nhe ll\nhell o\nĠ h\r\n\n"
}

func writeDir(t *testing.T, files map[string]string) string {
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDir(t *testing.T) {
	vocab, merges := tinyVocab()
	for _, names := range [][2]string{{"vocab.json", "merges.txt"}, {"encoder.json", "vocab.bpe"}} {
		dir := writeDir(t, map[string]string{names[0]: vocab, names[1]: merges})
		tok, err := LoadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		if tok == Default() {
			t.Fatalf("LoadDir(%v) returned the default tokenizer", names)
		}
		if n := tok.VocabSize(); n != 302 {
			t.Errorf("%v: VocabSize() = %d, want 302", names, n)
		}
		in := "hello hello hell<|pad|>"
		// "h e" outranks "Ġ h", so " hello" merges to " ", "hello".
		want := []int{259, ' ', 259, ' ', 258, '<', '|', 'p', 'a', 'd', '|', '>'}
		if got := tok.Encode(in); !slices.Equal(got, want) {
			t.Errorf("%v: Encode(%q) = %v, want %v", names, in, got, want)
		}
		if got, want := tok.EncodeSpecial("hello<|pad|><|endoftext|>"), []int{259, 301, 300}; !slices.Equal(got, want) {
			t.Errorf("%v: EncodeSpecial = %v, want %v", names, got, want)
		}
		if s, err := tok.Decode([]int{259, 301, 300}); s != "hello<|pad|><|endoftext|>" || err != nil {
			t.Errorf("%v: Decode = %q, %v", names, s, err)
		}
		if _, err := tok.Decode([]int{280}); err == nil {
			t.Errorf("%v: Decode of an id the vocabulary skips succeeded", names)
		}

		// WriteFiles writes HF names with the bytes that were loaded.
		out := t.TempDir()
		if err := tok.WriteFiles(out); err != nil {
			t.Fatal(err)
		}
		for name, want := range map[string]string{"vocab.json": vocab, "merges.txt": merges} {
			if got, err := os.ReadFile(filepath.Join(out, name)); string(got) != want || err != nil {
				t.Errorf("%v: WriteFiles wrote %s = %q, %v", names, name, got, err)
			}
		}
	}

	// A directory without vocabulary files gets the embedded one.
	if tok, err := LoadDir(t.TempDir()); tok != Default() || err != nil {
		t.Errorf("LoadDir(empty dir) = %p, %v; want Default()", tok, err)
	}
	// HF names win over OpenAI names.
	dir := writeDir(t, map[string]string{"vocab.json": vocab, "merges.txt": merges, "encoder.json": "garbage"})
	if _, err := LoadDir(dir); err != nil {
		t.Errorf("LoadDir with both conventions: %v", err)
	}
}

func TestLoadDirErrors(t *testing.T) {
	vocab, merges := tinyVocab()
	for _, tc := range []struct {
		name    string
		files   map[string]string
		badFile string
	}{
		{"corrupt vocab.json", map[string]string{"vocab.json": `{"a": 1,`, "merges.txt": merges}, "vocab.json"},
		{"vocab.json not an object", map[string]string{"vocab.json": `[1, 2]`, "merges.txt": merges}, "vocab.json"},
		{"vocab.json float id", map[string]string{"vocab.json": `{"a": 1.5}`, "merges.txt": merges}, "vocab.json"},
		{"vocab.json negative id", map[string]string{"vocab.json": `{"a": -1}`, "merges.txt": merges}, "vocab.json"},
		{"vocab.json lacks bytes", map[string]string{"vocab.json": `{"a": 0}`, "merges.txt": merges}, "vocab.json"},
		{"corrupt encoder.json", map[string]string{"encoder.json": `{"a" 1}`, "vocab.bpe": merges}, "encoder.json"},
		{"corrupt merges.txt", map[string]string{"vocab.json": vocab, "merges.txt": "#version: 0.2\nh e\nhello\n"}, "merges.txt"},
		{"missing merges.txt", map[string]string{"vocab.json": vocab}, "merges.txt"},
		{"missing vocab.bpe", map[string]string{"encoder.json": vocab}, "vocab.bpe"},
		{"missing encoder.json", map[string]string{"vocab.bpe": merges}, "encoder.json"},
	} {
		dir := writeDir(t, tc.files)
		tok, err := LoadDir(dir)
		if err == nil {
			t.Errorf("%s: LoadDir succeeded", tc.name)
			continue
		}
		if tok != nil {
			t.Errorf("%s: LoadDir returned a tokenizer with an error", tc.name)
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, tc.badFile)) {
			t.Errorf("%s: error %q does not name %s", tc.name, err, tc.badFile)
		}
	}
}

// Loading the GPT-2 files through a path that cannot share the default tables
// (the JSON is reformatted) must give the same tokenizer.
func TestLoadReformattedGPT2(t *testing.T) {
	vocab := strings.ReplaceAll(embeddedEncoder, `, "`, ",\n  \"")
	tok, err := Load([]byte(vocab), []byte(embeddedMerges), "vocab.json", "merges.txt")
	if err != nil {
		t.Fatal(err)
	}
	if tok == Default() {
		t.Fatal("Load returned the default tokenizer for different bytes")
	}
	text := "Loading the GPT-2 files, once more: naïve 日本語 🤗 <|endoftext|>."
	if got, want := tok.Encode(text), Default().Encode(text); !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}
	if got, want := tok.EncodeSpecial(text), Default().EncodeSpecial(text); !slices.Equal(got, want) {
		t.Errorf("EncodeSpecial = %v, want %v", got, want)
	}
}

func TestWriteFilesDefault(t *testing.T) {
	dir := t.TempDir()
	if err := Default().WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"vocab.json": embeddedEncoder, "merges.txt": embeddedMerges} {
		if got, err := os.ReadFile(filepath.Join(dir, name)); string(got) != want || err != nil {
			t.Errorf("WriteFiles wrote %s: %d bytes, %v; want the embedded %d bytes", name, len(got), err, len(want))
		}
	}
	if tok, err := LoadDir(dir); tok != Default() || err != nil {
		t.Errorf("LoadDir(WriteFiles(Default())) = %p, %v; want Default()", tok, err)
	}
	if err := Default().WriteFiles(filepath.Join(dir, "missing", "dir")); err == nil || !strings.Contains(err.Error(), "vocab.json") {
		t.Errorf("WriteFiles to a missing directory: %v", err)
	}
}

// Long pre-tokens take the heap-based merge; it must agree with the
// quadratic one and with the reference.
func TestLongPieces(t *testing.T) {
	tab := Default().tables()
	rng := rand.New(rand.NewPCG(1, 2))
	alphabets := []string{"ab", "aeiou", "abcdefghijklmnopqrstuvwxyz", "\x00\x01\xff", "é日"}
	for i := range 200 {
		alpha := []rune(alphabets[i%len(alphabets)])
		n := 1 + rng.IntN(300)
		var sb strings.Builder
		for range n {
			sb.WriteRune(alpha[rng.IntN(len(alpha))])
		}
		piece := sb.String()
		long := tab.bpeLong(nil, piece)
		var want []int
		for _, tok := range referenceBPE(refOnce(), piece) {
			want = append(want, refOnce().encoder[tok])
		}
		if !slices.Equal(long, want) {
			t.Fatalf("bpeLong(%+q) = %v, want %v", piece, long, want)
		}
		if len(piece) <= maxQuadraticPiece {
			if short := tab.bpe(nil, piece); !slices.Equal(short, want) {
				t.Fatalf("bpe(%+q) = %v, want %v", piece, short, want)
			}
		}
	}
	// Whole-text round trips through very long pre-tokens.
	for _, s := range []string{strings.Repeat("a", 100000), strings.Repeat(" ", 5000) + "x", strings.Repeat("1", 3000), strings.Repeat("!?", 2000)} {
		ids := Default().Encode(s)
		if got, _ := Default().Decode(ids); got != s {
			t.Errorf("round trip of %d-byte run failed", len(s))
		}
		if len(s) <= 5000 {
			if ref := referenceEncode(s); !slices.Equal(ids, ref) {
				t.Errorf("Encode of %d-byte run disagrees with the reference", len(s))
			}
		}
	}
}

func TestConcurrentEncode(t *testing.T) {
	tok := Default()
	texts := []string{"The quick brown fox jumps over the lazy dog.", "Zyzzyva quokkas' flibbertigibbets!", "日本語のテキスト 🤗", "antidisestablishmentarianism"}
	want := make([][]int, len(texts))
	for i, s := range texts {
		want[i] = referenceEncode(s)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 200 {
				i := (g + k) % len(texts)
				if got := tok.Encode(texts[i]); !slices.Equal(got, want[i]) {
					t.Errorf("Encode(%q) = %v, want %v", texts[i], got, want[i])
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestCacheBounded(t *testing.T) {
	c := newBPECache()
	for i := range 2 * cacheShards * maxShardLen {
		c.put(strconv.Itoa(i), []int32{int32(i)})
	}
	total := 0
	for i := range c.shards {
		if n := len(c.shards[i].m); n == 0 || n > maxShardLen {
			t.Errorf("shard %d holds %d entries, want 1..%d", i, n, maxShardLen)
		}
		total += len(c.shards[i].m)
	}
	if toks, ok := c.get("0"); ok && (len(toks) != 1 || toks[0] != 0) {
		t.Errorf("get(\"0\") = %v", toks)
	}
	key := strconv.Itoa(2*cacheShards*maxShardLen - 1)
	if toks, ok := c.get(key); !ok || toks[0] != int32(2*cacheShards*maxShardLen-1) {
		t.Errorf("get(%q) = %v, %v; want the last entry put", key, toks, ok)
	}
	t.Logf("%d entries cached", total)
}

// Random strings over the characters that matter to the pre-tokenizer,
// checked against the reference encoder; a cheap complement to fuzzing.
func TestRandomVsReference(t *testing.T) {
	tok := Default()
	alphabet := []string{
		" ", " ", "  ", "\t", "\n", "\r\n", "\v", "\f", "\u0085", "\u00a0", "\u1680", "\u2002", "\u2028", "\u202f", "\u3000",
		"\ufeff", "\u200b", "'", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'L",
		"a", "the", "Hello", "é", "ß", "日本", "Ω", "ǅ", "ʰ", "1", "42", "٣", "Ⅻ", "½", "²",
		".", "!?", "-", "<|endoftext|>", "🤗", "👩‍👩‍👧", "\u0301", "\x00", "\x1f", "\x7f", "\xff", "\xc3", "\xe6\x97", "\xed\xa0\x80",
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 3000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		s := sb.String()
		ids := tok.Encode(s)
		if ref := referenceEncode(s); !slices.Equal(ids, ref) {
			t.Fatalf("Encode(%+q) = %v, reference %v", s, ids, ref)
		}
		if got, err := tok.DecodeBytes(ids); string(got) != s || err != nil {
			t.Fatalf("DecodeBytes(Encode(%+q)) = %+q, %v", s, got, err)
		}
	}
}
