package tokenizer

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	"", "Hello, world!", "I'm sure they'll've done it", "IT'S", "a  b\n\n\tc   ",
	"hello \u0085world", "\ufeffBOM", "<|endoftext|>", "x<|endoftext|>y",
	"naïve café 日本語 🤗 👩‍👩‍👧", "123,456.78 ½ Ⅻ", "\xff\xfe invalid \xc3", "\u00a0\u2028\u3000 x",
	"func main() {\n\tfmt.Println(\"hi\")\n}\n", strings.Repeat("ab", 100),
}

// addFixtureSeeds adds the fixture texts, when available, as seed inputs.
func addFixtureSeeds(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	dir := os.Getenv("GPT2_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "fixtures", "tokenizer", "cases.jsonl")); err == nil {
		for _, c := range loadCases(f) {
			f.Add(c.Text)
		}
	}
}

// FuzzRoundTrip checks that any string, valid UTF-8 or not, encodes to ids
// that decode to the same bytes, and that the fast encoder agrees with the
// reference one.
func FuzzRoundTrip(f *testing.F) {
	addFixtureSeeds(f)
	tok := Default()
	f.Fuzz(func(t *testing.T, s string) {
		ids := tok.Encode(s)
		for _, id := range ids {
			if id < 0 || id >= tok.VocabSize() || id == EndOfText {
				t.Fatalf("Encode(%+q) produced id %d", s, id)
			}
		}
		got, err := tok.DecodeBytes(ids)
		if err != nil || !bytes.Equal(got, []byte(s)) {
			t.Fatalf("DecodeBytes(Encode(%+q)) = %+q, %v", s, got, err)
		}
		if len(s) <= 4096 {
			if ref := referenceEncode(s); !slices.Equal(ids, ref) {
				t.Fatalf("Encode(%+q) = %v, reference %v", s, ids, ref)
			}
		}
		got, err = tok.DecodeBytes(tok.EncodeSpecial(s))
		if err != nil || !bytes.Equal(got, []byte(s)) {
			t.Fatalf("DecodeBytes(EncodeSpecial(%+q)) = %+q, %v", s, got, err)
		}
	})
}

// FuzzStreamDecoder checks that streaming gives the same bytes as Decode and,
// for valid UTF-8 input, only ever returns whole characters.
func FuzzStreamDecoder(f *testing.F) {
	addFixtureSeeds(f)
	tok := Default()
	f.Fuzz(func(t *testing.T, s string) {
		d := tok.NewStreamDecoder()
		var sb strings.Builder
		valid := utf8.ValidString(s)
		for _, id := range tok.Encode(s) {
			out, err := d.Add(id)
			if err != nil {
				t.Fatal(err)
			}
			if valid && !utf8.ValidString(out) {
				t.Fatalf("streaming %+q: Add(%d) = %+q, not valid UTF-8", s, id, out)
			}
			sb.WriteString(out)
		}
		rest := d.Flush()
		if valid && rest != "" {
			t.Fatalf("streaming %+q: Flush() = %+q, want nothing left", s, rest)
		}
		if sb.WriteString(rest); sb.String() != s {
			t.Fatalf("streaming %+q gave %+q", s, sb.String())
		}
	})
}
