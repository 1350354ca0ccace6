package tokenizer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const benchParagraph = `It was the best of times, it was the worst of times, it was the age of
wisdom, it was the age of foolishness, it was the epoch of belief, it was the
epoch of incredulity, it was the season of Light, it was the season of
Darkness, it was the spring of hope, it was the winter of despair, we had
everything before us, we had nothing before us, we were all going direct to
Heaven, we were all going direct the other way--in short, the period was so
far like the present period, that some of its noisiest authorities insisted on
its being received, for good or for evil, in the superlative degree of
comparison only.

`

// benchText returns English text: Tiny Shakespeare from the shared data
// directory if present, else a paragraph of Dickens repeated to a similar size.
func benchText(b *testing.B) string {
	dir := os.Getenv("GPT2_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared")
	}
	data, err := os.ReadFile(filepath.Join(dir, "data", "corpora", "tinyshakespeare", "input.txt"))
	if err != nil {
		b.Logf("tinyshakespeare not found (%v); using an embedded paragraph", err)
		return strings.Repeat(benchParagraph, 1<<20/len(benchParagraph))
	}
	return string(data)
}

func BenchmarkEncode(b *testing.B) {
	text := benchText(b)
	tok := Default()
	tok.Encode(text) // parse the vocabulary outside the timing
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		tok.Encode(text)
	}
}

// BenchmarkEncodeParallel encodes from all Ps at once, to show the shared
// BPE cache does not serialize encoders.
func BenchmarkEncodeParallel(b *testing.B) {
	text := benchText(b)
	text = text[:len(text)/16] // several items per P
	tok := Default()
	tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tok.Encode(text)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	text := benchText(b)
	tok := Default()
	ids := tok.Encode(text)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tok.Decode(ids); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoad measures parsing the embedded vocabulary, the cost of the
// first use of Default().
func BenchmarkLoad(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parse(embeddedEncoder, embeddedMerges, "encoder.json", "vocab.bpe"); err != nil {
			b.Fatal(err)
		}
	}
}
