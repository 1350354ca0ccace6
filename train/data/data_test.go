package data

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/tokenizer"
)

func seqTokens(n int) []uint16 {
	t := make([]uint16, n)
	for i := range t {
		t[i] = uint16(i)
	}
	return t
}

func TestShardRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a.bin")
	want := []uint16{0, 1, 50256, 65535, 7}
	if err := WriteShard(p, want); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != HeaderSize+2*len(want) || binary.LittleEndian.Uint32(raw) != Magic ||
		binary.LittleEndian.Uint32(raw[4:]) != Version || binary.LittleEndian.Uint32(raw[8:]) != uint32(len(want)) {
		t.Fatalf("bad header or size %d", len(raw))
	}
	s, err := OpenShard(p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !slices.Equal(s.Tokens(), want) {
		t.Fatalf("read %v, want %v", s.Tokens(), want)
	}
	if err := s.CheckVocab(50257); err == nil || !strings.Contains(err.Error(), "65535") {
		t.Fatalf("CheckVocab: %v", err)
	}
}

// Every kind of bad file is refused with a message that names the file.
func TestBadShards(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.bin")
	if err := WriteShard(good, seqTokens(100)); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMagic := slices.Clone(raw)
	binary.LittleEndian.PutUint32(badMagic, 12345)
	badVersion := slices.Clone(raw)
	binary.LittleEndian.PutUint32(badVersion[4:], 2)
	bigToken := slices.Clone(raw)
	binary.LittleEndian.PutUint16(bigToken[HeaderSize+2*50:], 50257)
	cases := []struct {
		path, want string
	}{
		{write("magic.bin", badMagic), "wrong magic number 12345"},
		{write("version.bin", badVersion), "unsupported version 2"},
		{write("trunc.bin", raw[:len(raw)-3]), "truncated"},
		{write("short.bin", raw[:100]), "too short"},
		{write("token.bin", bigToken), "token 50257 at position 50"},
		{good, "fewer than one batch"},
	}
	for _, c := range cases {
		b := 3
		if c.path == good {
			b = 10 // 101 tokens a batch
		}
		l, err := Open([]string{good, c.path}, b, 10, Options{Vocab: 50257})
		if err == nil {
			l.Close()
			t.Errorf("%s: opened", c.path)
			continue
		}
		if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
			t.Errorf("%s: error %q, want it to mention %q and the file", c.path, err, c.want)
		}
		if c.want != "fewer than one batch" && !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not ErrFormat", c.path, err)
		}
	}
}

// The loader follows llm.c: batches B*T apart, wrapping to the next shard
// when fewer than B*T+1 tokens remain.
func TestLoaderSequence(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "train_000000.bin"), filepath.Join(dir, "train_000001.bin")
	ta := seqTokens(20) // batches at 0, 6; 12+7 = 19 <= 20 so 12 too; 18+7 > 20
	tb := seqTokens(10) // batch at 0 only
	for i := range tb {
		tb[i] += 1000
	}
	if err := WriteShard(a, ta); err != nil {
		t.Fatal(err)
	}
	if err := WriteShard(b, tb); err != nil {
		t.Fatal(err)
	}
	paths, err := Shards(dir, "train")
	if err != nil || !slices.Equal(paths, []string{a, b}) {
		t.Fatalf("Shards = %v, %v", paths, err)
	}
	l, err := Open(paths, 2, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	starts := []uint16{0, 6, 12, 1000, 0, 6}
	var positions []Position
	for k, s := range starts {
		positions = append(positions, l.Position())
		batch := l.Next()
		if len(batch) != 7 || batch[0] != s || batch[6] != s+6 {
			t.Fatalf("batch %d = %v, want 7 tokens from %d", k, batch, s)
		}
	}
	if p := l.Position(); p.Epoch != 1 || p.Shard != 0 || p.Offset != 12 {
		t.Fatalf("position after 6 batches %+v", p)
	}
	// Seeking to a saved position replays the same batches.
	if err := l.Seek(positions[2]); err != nil {
		t.Fatal(err)
	}
	for k := 2; k < len(starts); k++ {
		if got := l.Next(); got[0] != starts[k] {
			t.Fatalf("after Seek, batch %d starts at %d, want %d", k, got[0], starts[k])
		}
	}
}

// The fixture's train.bin holds exactly one batch, read at position 0 at
// every step.
func TestFixtureTrainBin(t *testing.T) {
	path := filepath.Join(fixture.HFDir(t), "train.bin")
	var e struct {
		Data struct {
			NTokens int   `json:"n_tokens"`
			Tokens  []int `json:"tokens"`
		} `json:"data"`
		BatchPositions []int `json:"batch_positions"`
	}
	fixture.ReadJSON(t, filepath.Join(fixture.HFDir(t), "train_stream_expected.json"), &e)
	l, err := Open([]string{path}, 2, 32, Options{Vocab: 50257})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for k, p := range e.BatchPositions {
		if got := l.Position().Offset; k > 0 && got != int64(p)+64 {
			// Before wrapping, the offset is one batch past p.
			t.Fatalf("step %d: offset %d", k, got)
		}
		batch := l.Next()
		for i, v := range batch {
			if int(v) != e.Data.Tokens[p+i] {
				t.Fatalf("step %d token %d = %d, want %d", k, i, v, e.Data.Tokens[p+i])
			}
		}
	}
}

func TestShuffleDocuments(t *testing.T) {
	toks := []uint16{1, 2, EndOfText, 3, 4, EndOfText, 5, EndOfText, 6, 7, 8}
	a := ShuffleDocuments(nil, toks, 1, 0, 0)
	b := ShuffleDocuments(nil, toks, 1, 0, 0)
	if !slices.Equal(a, b) {
		t.Fatal("not deterministic")
	}
	if sa, st := slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(toks)); !slices.Equal(sa, st) {
		t.Fatalf("shuffle changed the tokens: %v", a)
	}
	differs := false
	for e := 1; e < 10; e++ {
		if !slices.Equal(ShuffleDocuments(nil, toks, 1, e, 0), a) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("every epoch has the same order")
	}
}

// Chunked, parallel tokenization must give the tokens of each whole file.
func TestPrepare(t *testing.T) {
	in := t.TempDir()
	texts := map[string]string{
		"a.txt":       "Hello world.\n\nIt's a   test;  with  spaces \n\n\nand lines.\r\nMore text here 123 456.\n",
		"b.txt":       strings.Repeat("The quick brown fox jumps over the lazy dog. ", 40) + "\n" + strings.Repeat("Zwölf Boxkämpfer\tjagen Viktor\u00a0quer über den großen Sylter Deich.\n", 30),
		"sub/c.txt":   strings.Repeat("one two  three\n   four\n", 50),
		"sub/.hidden": "not read",
		"d.txt":       "",
		"e.txt":       strings.Repeat("x", 3000), // no place to cut at all
	}
	for name, text := range texts {
		p := filepath.Join(in, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tok := tokenizer.Default()
	var want []uint16
	var valWant []uint16
	valFile := filepath.Join(in, "b.txt")
	for _, name := range []string{"a.txt", "b.txt", "d.txt", "e.txt", "sub/c.txt"} {
		doc := []uint16{EndOfText}
		for _, id := range tok.Encode(texts[name]) {
			doc = append(doc, uint16(id))
		}
		if filepath.Join(in, name) == valFile {
			valWant = append(valWant, doc...)
		} else {
			want = append(want, doc...)
		}
	}
	var results [][]uint16
	for _, workers := range []int{1, 3} {
		out := t.TempDir()
		res, err := Prepare(context.Background(), PrepareOptions{
			Out: out, Inputs: []string{in}, ValFiles: []string{valFile}, ShardTokens: 100,
			Tokenizer: tok, Workers: workers, ChunkBytes: 64, Progress: new(strings.Builder),
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.TrainDocs != 4 || res.ValDocs != 1 || res.TrainTokens != int64(len(want)) || res.ValTokens != int64(len(valWant)) {
			t.Fatalf("result %+v; want 4+1 docs, %d+%d tokens", res, len(want), len(valWant))
		}
		got := readAll(t, out, "train")
		if !slices.Equal(got, want) {
			t.Fatalf("workers %d: train tokens differ from whole-file tokenization (%d vs %d tokens)", workers, len(got), len(want))
		}
		if v := readAll(t, out, "val"); !slices.Equal(v, valWant) {
			t.Fatalf("val tokens differ")
		}
		if len(res.TrainShards) != (len(want)+99)/100 {
			t.Fatalf("%d shards for %d tokens of 100 per shard", len(res.TrainShards), len(want))
		}
		results = append(results, got)
	}
}

func readAll(t *testing.T, dir, prefix string) []uint16 {
	t.Helper()
	paths, err := Shards(dir, prefix)
	if err != nil {
		t.Fatal(err)
	}
	var all []uint16
	for _, p := range paths {
		s, err := OpenShard(p)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s.Tokens()...)
		s.Close()
	}
	return all
}

// --val-fraction holds out whole documents, the same ones every time; a
// single document is split instead.
func TestPrepareValFraction(t *testing.T) {
	in := t.TempDir()
	for i := range 10 {
		os.WriteFile(filepath.Join(in, string(rune('a'+i))+".txt"), []byte(strings.Repeat("word ", 200)+"\n"), 0o644)
	}
	tok := tokenizer.Default()
	opts := PrepareOptions{Inputs: []string{in}, ValFraction: 0.25, Tokenizer: tok}
	opts.Out = t.TempDir()
	r1, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r1.ValDocs != 3 || r1.TrainDocs != 7 {
		t.Fatalf("held out %d of 10 documents for 0.25, want 3", r1.ValDocs)
	}
	opts.Out = t.TempDir()
	r2, _ := Prepare(context.Background(), opts)
	if !slices.Equal(readAll(t, filepath.Dir(r1.ValShards[0]), "val"), readAll(t, filepath.Dir(r2.ValShards[0]), "val")) {
		t.Fatal("validation split differs between runs")
	}

	one := filepath.Join(t.TempDir(), "one.txt")
	text := strings.Repeat("Some words here.\n", 100)
	os.WriteFile(one, []byte(text), 0o644)
	opts = PrepareOptions{Out: t.TempDir(), Inputs: []string{one}, ValFraction: 0.1, Tokenizer: tok}
	r, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if r.ValDocs != 1 || r.TrainDocs != 1 || r.ValTokens < r.TrainTokens/20 || r.ValTokens > r.TrainTokens/5 {
		t.Fatalf("single document split: %+v", r)
	}
}
