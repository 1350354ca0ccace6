package tfckpt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/format/half"
	"github.com/gpt2go/gpt2/format/safetensors"
)

// sharedDir returns the shared directory, skipping the test when the
// fixtures are not there.
func sharedDir(t testing.TB) string {
	t.Helper()
	shared := os.Getenv("GPT2_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(shared, "fixtures")); err != nil {
		t.Skipf("fixtures not available (%v); set GPT2_SHARED to the shared directory", err)
	}
	return shared
}

var layerRE = regexp.MustCompile(`^h(\d+)$`)

// hfName maps an OpenAI checkpoint name to its Hugging Face equivalent:
// model/h0/attn/c_attn/w -> h.0.attn.c_attn.weight, model/wte -> wte.weight.
func hfName(tf string) string {
	parts := strings.Split(strings.TrimPrefix(tf, "model/"), "/")
	for i, p := range parts {
		parts[i] = layerRE.ReplaceAllString(p, "h.$1")
	}
	switch last := parts[len(parts)-1]; {
	case len(parts) == 1:
		parts = append(parts, "weight")
	case last == "w" || last == "g":
		parts[len(parts)-1] = "weight"
	case last == "b":
		parts[len(parts)-1] = "bias"
	}
	return strings.Join(parts, ".")
}

func TestFixture(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "fixtures", "tiny-real-vocab-openai")
	b, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	names := b.Names()
	if len(names) != 28 || !slices.IsSorted(names) {
		t.Errorf("%d names (sorted: %v), want 28 sorted", len(names), slices.IsSorted(names))
	}
	for name, want := range map[string][]int{
		"model/wte":              {50257, 64},
		"model/wpe":              {128, 64},
		"model/h0/attn/c_attn/w": {1, 64, 192},
		"model/h1/attn/c_attn/b": {192},
		"model/h0/attn/c_proj/w": {1, 64, 64},
		"model/h1/mlp/c_fc/w":    {1, 64, 256},
		"model/h0/mlp/c_proj/w":  {1, 256, 64},
		"model/h1/ln_2/g":        {64},
		"model/ln_f/b":           {64},
		"model/h0/mlp/c_fc/b":    {256},
	} {
		e, ok := b.Entry(name)
		if !ok || e.DType != F32 || !slices.Equal(e.Shape, want) || e.Size != int64(4*e.NumElements()) {
			t.Errorf("Entry(%q) = %+v, %v; want F32 %v", name, e, ok, want)
		}
	}

	st, err := safetensors.Open(filepath.Join(sharedDir(t), "fixtures", "tiny-real-vocab", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, name := range names {
		got, err := b.Float32(name)
		if err != nil {
			t.Fatal(err)
		}
		hf := hfName(name)
		want, err := st.Float32(hf)
		if err != nil {
			t.Fatalf("%s -> %s: %v", name, hf, err)
		}
		e, _ := b.Entry(name)
		info, _ := st.Info(hf)
		shape := e.Shape
		if strings.HasSuffix(name, "/w") && shape[0] == 1 {
			shape = shape[1:] // TF conv1d weights have a leading 1
		}
		if !slices.Equal(shape, info.Shape) {
			t.Errorf("%s: shape %v, %s has %v", name, e.Shape, hf, info.Shape)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, %s has %d", name, len(got), hf, len(want))
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%s[%d] = %v, %s has %v", name, i, got[i], hf, want[i])
			}
		}
	}
	// Every non-buffer tensor of the safetensors file is accounted for.
	mapped := map[string]bool{}
	for _, name := range names {
		mapped[hfName(name)] = true
	}
	for _, name := range st.Names() {
		if !mapped[name] && !strings.HasSuffix(name, ".attn.bias") {
			t.Errorf("safetensors tensor %s has no checkpoint counterpart", name)
		}
	}

	// Open with the prefix and ParseIndex agree with OpenDir.
	b2, err := Open(filepath.Join(dir, "model.ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	index, err := os.ReadFile(filepath.Join(dir, "model.ckpt.index"))
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ParseIndex(index)
	if err != nil {
		t.Fatal(err)
	}
	if !equalEntries(entries, b.Entries()) || !equalEntries(entries, b2.Entries()) {
		t.Error("ParseIndex, Open and OpenDir disagree")
	}

	// The test writer, fed the same entries, produces an index that parses
	// to the same thing, which vouches for the synthetic tests below.
	var kvs []kv
	kvs = append(kvs, kv{nil, encodeHeaderProto(1)})
	for _, e := range entries {
		shape := make([]int64, len(e.Shape))
		for i, d := range e.Shape {
			shape[i] = int64(d)
		}
		kvs = append(kvs, kv{[]byte(e.Name), encodeEntryProto(1, shape, 0, e.Offset, e.Size, e.CRC32C)})
	}
	again, err := ParseIndex(buildTable(kvs, tableOptions{}))
	if err != nil || !equalEntries(again, entries) {
		t.Errorf("rebuilt index: %v", err)
	}
}

func equalEntries(a, b []Entry) bool {
	return slices.EqualFunc(a, b, func(x, y Entry) bool {
		return x.Name == y.Name && x.DType == y.DType && slices.Equal(x.Shape, y.Shape) &&
			x.Shard == y.Shard && x.Offset == y.Offset && x.Size == y.Size && x.CRC32C == y.CRC32C
	})
}

func f32Bytes(v ...float32) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// sampleTensors covers every readable dtype, two shards, a scalar, an
// empty tensor and a string tensor.
func sampleTensors() []testTensor {
	var f16, bf16, f64 []byte
	for _, v := range []float32{1, -0.5, 65504} {
		f16 = binary.LittleEndian.AppendUint16(f16, half.F32ToF16(v))
		bf16 = binary.LittleEndian.AppendUint16(bf16, half.F32ToBF16(v))
		f64 = binary.LittleEndian.AppendUint64(f64, math.Float64bits(float64(v)))
	}
	return []testTensor{
		{name: "model/w", dtype: 1, shape: []int64{1, 2, 3}, data: f32Bytes(1, 2, 3, 4, 5, 6)},
		{name: "model/b", dtype: 1, shape: []int64{2}, data: f32Bytes(-1, float32(math.Inf(1))), shard: 1},
		{name: "half", dtype: 19, shape: []int64{3}, data: f16},
		{name: "brain", dtype: 14, shape: []int64{3}, data: bf16, shard: 1},
		{name: "double", dtype: 2, shape: []int64{3}, data: f64},
		{name: "scalar", dtype: 1, data: f32Bytes(7)},
		{name: "empty", dtype: 1, shape: []int64{0, 5}},
		{name: "ints", dtype: 3, shape: []int64{2}, data: []byte{1, 0, 0, 0, 2, 0, 0, 0}},
		{name: "longs", dtype: 9, shape: []int64{1}, data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{name: "_CHECKPOINTABLE_OBJECT_GRAPH", dtype: 7, data: []byte("\x03abc")},
	}
}

func TestBundle(t *testing.T) {
	for _, opt := range []tableOptions{
		{},
		{blockEntries: 1, restartInterval: 1},
		{blockEntries: 3, restartInterval: 2},
		{blockEntries: 4, snappy: true},
	} {
		t.Run(fmt.Sprintf("%+v", opt), func(t *testing.T) {
			prefix := writeBundle(t, t.TempDir(), sampleTensors(), 2, opt)
			b, err := Open(prefix)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			want := map[string][]float32{
				"model/w": {1, 2, 3, 4, 5, 6},
				"model/b": {-1, float32(math.Inf(1))},
				"half":    {1, -0.5, 65504},
				"brain":   {1, -0.5, 65536}, // 65504 rounds to 65536 in bfloat16
				"double":  {1, -0.5, 65504},
				"scalar":  {7},
				"empty":   {},
			}
			for name, w := range want {
				got, err := b.Float32(name)
				if err != nil || got == nil || !slices.Equal(got, w) {
					t.Errorf("Float32(%q) = %v, %v; want %v", name, got, err, w)
				}
			}
			if got := b.Names(); len(got) != 10 || !slices.IsSorted(got) {
				t.Errorf("Names() = %q", got)
			}
			e, ok := b.Entry("model/b")
			if !ok || e.Shard != 1 || e.DType != F32 || !slices.Equal(e.Shape, []int{2}) || e.Offset == 0 {
				t.Errorf("Entry(model/b) = %+v, %v", e, ok)
			}
			if raw, err := b.Bytes("ints"); err != nil || !bytes.Equal(raw, []byte{1, 0, 0, 0, 2, 0, 0, 0}) {
				t.Errorf("Bytes(ints) = %v, %v", raw, err)
			}
			if _, err := b.Float32("ints"); err == nil || !strings.Contains(err.Error(), "dtype I32 cannot be read as float32") {
				t.Errorf("Float32(ints) error = %v", err)
			}
			if _, err := b.Bytes("_CHECKPOINTABLE_OBJECT_GRAPH"); err == nil || !strings.Contains(err.Error(), "STRING") {
				t.Errorf("Bytes(string tensor) error = %v", err)
			}
			if _, err := b.Float32("missing"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Float32(missing) error = %v", err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	prefix := writeBundle(t, t.TempDir(), sampleTensors(), 2, tableOptions{})
	b, err := Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := b.Float32("model/w"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Float32 after Close: %v", err)
	}
}

func TestCorruptData(t *testing.T) {
	prefix := writeBundle(t, t.TempDir(), sampleTensors(), 2, tableOptions{})
	data := DataFile(prefix, 0, 2)
	raw, err := os.ReadFile(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(prefix)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := b.Entry("model/w")
	b.Close()
	raw[e.Offset+5] ^= 0x10
	if err := os.WriteFile(data, raw, 0o644); err != nil {
		t.Fatal(err)
	}

	b, err = Open(prefix)
	if err != nil {
		t.Fatal(err) // corruption is found when the tensor is read
	}
	defer b.Close()
	_, err = b.Float32("model/w")
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "checksum mismatch") || !strings.Contains(err.Error(), data) {
		t.Errorf("Float32 of corrupt data: %v", err)
	}
	if _, err := b.Bytes("model/w"); err == nil {
		t.Error("second read of corrupt data succeeded")
	}
	if v, err := b.Float32("half"); err != nil || v[1] != -0.5 {
		t.Errorf("intact tensor in the same shard: %v, %v", v, err)
	}
}

func TestTruncated(t *testing.T) {
	index, shards := buildBundle(sampleTensors(), 2, tableOptions{blockEntries: 3, restartInterval: 2})
	if _, err := ParseIndex(index); err != nil {
		t.Fatal(err)
	}
	for n := range len(index) {
		if _, err := ParseIndex(index[:n]); err == nil {
			t.Fatalf("ParseIndex of the first %d of %d bytes succeeded", n, len(index))
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("prefix %d: error %v does not match ErrInvalid", n, err)
		}
	}

	// Truncated data files are caught by Open.
	dir := t.TempDir()
	prefix := filepath.Join(dir, "model.ckpt")
	os.WriteFile(prefix+".index", index, 0o644)
	os.WriteFile(DataFile(prefix, 1, 2), shards[1], 0o644)
	full := shards[0]
	for n := range len(full) {
		os.WriteFile(DataFile(prefix, 0, 2), full[:n], 0o644)
		b, err := Open(prefix)
		if err == nil {
			b.Close()
			t.Fatalf("Open with the first %d of %d data bytes succeeded", n, len(full))
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "extend past the end") {
			t.Fatalf("prefix %d: %v", n, err)
		}
	}
}

// corrupt returns a copy of table with b[i] changed and the CRC of the
// block containing i recomputed, so the change reaches the parser.
func rechecksum(table []byte, blockOff, blockLen int) {
	contents := table[blockOff : blockOff+blockLen]
	typ := table[blockOff+blockLen]
	crc := crc32Update(contents, typ)
	binary.LittleEndian.PutUint32(table[blockOff+blockLen+1:], maskCRC(crc))
}

func TestIndexErrors(t *testing.T) {
	good := func(e []byte) []kv {
		return []kv{{nil, encodeHeaderProto(1)}, {[]byte("a"), e}}
	}
	f32Entry := encodeEntryProto(1, []int64{2}, 0, 0, 8, 0)
	table := func(kvs []kv) []byte { return buildTable(kvs, tableOptions{}) }
	valid := table(good(f32Entry))
	if _, err := ParseIndex(valid); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(b []byte)) []byte {
		b := slices.Clone(valid)
		f(b)
		return b
	}
	// The data block is the first block: contents are valid[0:n].
	dataLen := len(encodeBlock(good(f32Entry), 16))

	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short for a table footer"},
		{"bad magic", mutate(func(b []byte) { b[len(b)-1] ^= 1 }), "bad table magic"},
		{"bad block crc", mutate(func(b []byte) { b[10] ^= 1 }), "checksum mismatch"},
		{"bad trailer crc", mutate(func(b []byte) { b[dataLen+2] ^= 1 }), "checksum mismatch"},
		{"unknown compression", mutate(func(b []byte) { b[dataLen] = 2; rechecksum(b, 0, dataLen) }), "unsupported compression type 2"},
		{"bad snappy", mutate(func(b []byte) { b[dataLen] = 1; rechecksum(b, 0, dataLen) }), "snappy"},
		{"handle past end", mutate(func(b []byte) {
			f := b[len(b)-footerLen:]
			clear(f[:footerLen-8])
			copy(f, binary.AppendUvarint(binary.AppendUvarint(nil, 0), 1<<40))
		}), "extends past the end"},
		{"restarts overflow", mutate(func(b []byte) {
			binary.LittleEndian.PutUint32(b[dataLen-4:], 1<<30)
			rechecksum(b, 0, dataLen)
		}), "restart points"},
		{"no header", table([]kv{{[]byte("a"), f32Entry}}), "no bundle header"},
		{"empty table", table(nil), "no bundle header"},
		{"keys out of order", table([]kv{{nil, encodeHeaderProto(1)}, {[]byte("b"), f32Entry}, {[]byte("a"), f32Entry}}), "out of order"},
		{"duplicate key", table([]kv{{nil, encodeHeaderProto(1)}, {[]byte("a"), f32Entry}, {[]byte("a"), f32Entry}}), "out of order"},
		{"unknown dtype", table(good(encodeEntryProto(8, []int64{1}, 0, 0, 8, 0))), "unsupported dtype 8"},
		{"no dtype", table(good(pbVarint(nil, 5, 4))), "unsupported dtype 0"},
		{"shape/size mismatch", table(good(encodeEntryProto(1, []int64{3}, 0, 0, 8, 0))), "needs 12 bytes, but size is 8"},
		{"shape overflow", table(good(encodeEntryProto(1, []int64{1 << 32, 1 << 32}, 0, 0, 8, 0))), "more than 2^63"},
		{"negative dim", table(good(encodeEntryProto(1, []int64{-1}, 0, 0, 8, 0))), "negative dimension"},
		{"unknown rank", table(good(pbBytes(pbVarint(nil, 1, 1), 2, pbVarint(nil, 3, 1)))), "unknown rank"},
		{"negative offset", table(good(encodeEntryProto(1, []int64{2}, 0, -8, 8, 0))), "bad offset"},
		{"offset overflow", table(good(encodeEntryProto(1, []int64{2}, 0, math.MaxInt64-4, 8, 0))), "bad offset"},
		{"shard out of range", table(good(encodeEntryProto(1, []int64{2}, 1, 0, 8, 0))), "shard 1, but the bundle has 1"},
		{"negative shard", table(good(encodeEntryProto(1, []int64{2}, -1, 0, 8, 0))), "negative shard_id"},
		{"slices", table(good(pbBytes(f32Entry, 7, nil))), "sliced"},
		{"wrong wire type", table(good(pbBytes(nil, 1, []byte{1}))), "wire type"},
		{"group", table(good(append(slices.Clone(f32Entry), 0x7b))), "wire type 3"},
		{"truncated proto", table(good(f32Entry[:len(f32Entry)-1])), "truncated"},
		{"varint overflow", table(good(append(pbKey(nil, 4, wireVarint), bytes.Repeat([]byte{0xff}, 11)...))), "overflows"},
		{"field zero", table(good([]byte{0, 0})), "invalid field number 0"},
		{"no shards", table([]kv{{nil, nil}, {[]byte("a"), f32Entry}}), "num_shards is 0"},
		{"big endian", table([]kv{{nil, pbVarint(encodeHeaderProto(1), 2, 1)}}), "big-endian"},
		{"newer version", table([]kv{{nil, pbBytes(pbVarint(nil, 1, 1), 3, pbVarint(nil, 2, 2))}}), "needs a reader of version 2"},
		{"bad consumer", table([]kv{{nil, pbBytes(pbVarint(nil, 1, 1), 3, pbVarint(nil, 3, 1))}}), "disallows readers of version 1"},
		{"bad consumer packed", table([]kv{{nil, pbBytes(pbVarint(nil, 1, 1), 3, pbBytes(nil, 3, []byte{5, 1}))}}), "disallows readers of version 1"},
		{"key too long", table([]kv{{nil, encodeHeaderProto(1)}, {bytes.Repeat([]byte("a"), maxKeyLen+1), f32Entry}}), "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := ParseIndex(tt.data)
			if err == nil {
				t.Fatalf("ParseIndex succeeded: %+v", entries)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "tfckpt: index: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestIndexLenient(t *testing.T) {
	// Unknown fields of every wire type are skipped, a repeated shape field
	// merges, the same bad-consumer list without our version passes, and
	// an absent shape is a scalar.
	var unknown []byte
	unknown = pbVarint(unknown, 20, 5)
	unknown = pbBytes(unknown, 21, []byte("xyz"))
	unknown = binary.LittleEndian.AppendUint64(pbKey(unknown, 22, wireFixed64), 1)
	unknown = binary.LittleEndian.AppendUint32(pbKey(unknown, 23, wireFixed32), 1)
	entry := append(slices.Clone(unknown), encodeEntryProto(1, []int64{2}, 0, 16, 24, 7)...)
	entry = pbBytes(entry, 2, encodeShape([]int64{3})) // shape [2] + [3] = [2 3]
	scalar := pbVarint(pbVarint(nil, 1, 2), 5, 8)
	hdr := append(encodeHeaderProto(3), unknown...)
	hdr = pbBytes(hdr, 3, pbBytes(pbVarint(nil, 2, 1), 3, []byte{0, 2}))
	entries, err := ParseIndex(buildTable([]kv{{nil, hdr}, {[]byte("a"), entry}, {[]byte("s"), scalar}}, tableOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Name: "a", DType: F32, Shape: []int{2, 3}, Offset: 16, Size: 24, CRC32C: 7},
		{Name: "s", DType: F64, Shape: []int{}, Size: 8},
	}
	if !equalEntries(entries, want) {
		t.Errorf("ParseIndex = %+v, want %+v", entries, want)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "nope.index") {
		t.Errorf("Open(missing) = %v", err)
	}
	prefix := writeBundle(t, dir, sampleTensors(), 2, tableOptions{})
	shard1 := DataFile(prefix, 1, 2)
	os.Remove(shard1)
	if _, err := Open(prefix); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), shard1) {
		t.Errorf("Open without shard 1 = %v, want an error naming %s", err, shard1)
	}
	os.WriteFile(prefix+".index", []byte("garbage"), 0o644)
	if _, err := Open(prefix); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), prefix+".index") {
		t.Errorf("Open with a bad index = %v", err)
	}
}

func TestOpenDir(t *testing.T) {
	tensors := []testTensor{{name: "x", dtype: 1, shape: []int64{1}, data: f32Bytes(42)}}
	check := func(dir string) {
		t.Helper()
		b, err := OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if v, err := b.Float32("x"); err != nil || v[0] != 42 {
			t.Errorf("Float32(x) = %v, %v", v, err)
		}
	}

	// No checkpoint file: model.ckpt.
	dir := t.TempDir()
	writeBundle(t, dir, tensors, 1, tableOptions{})
	check(dir)

	// A checkpoint file naming another prefix, relative, in either quotes.
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	prefix := writeBundle(t, sub, tensors, 1, tableOptions{})
	for _, suffix := range []string{".index", ".data-00000-of-00001"} {
		os.Rename(prefix+suffix, filepath.Join(sub, "step-7"+suffix))
	}
	for _, state := range []string{
		"model_checkpoint_path: \"step-7\"\nall_model_checkpoint_paths: \"step-7\"\n",
		"# comment\n  model_checkpoint_path:'step-7'\n",
		"model_checkpoint_path: \"/somewhere/else/step-7\"\n", // absolute, moved: falls back to dir
	} {
		os.WriteFile(filepath.Join(sub, "checkpoint"), []byte(state), 0o644)
		check(sub)
	}
	// An absolute path that exists is used as is.
	abs, _ := filepath.Abs(filepath.Join(sub, "step-7"))
	other := t.TempDir()
	os.WriteFile(filepath.Join(other, "checkpoint"), []byte(fmt.Sprintf("model_checkpoint_path: %q\n", abs)), 0o644)
	check(other)

	for _, bad := range []string{"all_model_checkpoint_paths: \"x\"\n", "model_checkpoint_path: x\n", "model_checkpoint_path: \"\"\n"} {
		os.WriteFile(filepath.Join(sub, "checkpoint"), []byte(bad), 0o644)
		if _, err := OpenDir(sub); err == nil || !strings.Contains(err.Error(), "checkpoint") {
			t.Errorf("checkpoint %q: error %v", bad, err)
		}
	}
}

// TestAllocBound checks that lengths claimed by the input never turn into
// large allocations.
func TestAllocBound(t *testing.T) {
	// Keys that grow by one byte per entry through prefix compression: n
	// entries of a few bytes each would otherwise materialise n²/2 bytes
	// of names.
	var kvs []kv
	kvs = append(kvs, kv{nil, encodeHeaderProto(1)})
	key := []byte{}
	for range 10000 {
		key = append(key, 'a')
		kvs = append(kvs, kv{slices.Clone(key), encodeEntryProto(1, nil, 0, 0, 4, 0)})
	}
	growing := buildTable(kvs, tableOptions{restartInterval: 1 << 30})

	// A snappy block claiming a huge decoded length.
	var bomb []byte
	h := appendRawBlock(&bomb, append(binary.AppendUvarint(nil, 1<<31), 0), compressionSnappy)
	meta := appendBlock(&bomb, encodeBlock(nil, 1), false)
	idx := appendBlock(&bomb, encodeBlock([]kv{{[]byte("z"), h}}, 1), false)
	footer := make([]byte, footerLen)
	copy(footer, append(meta, idx...))
	binary.LittleEndian.PutUint64(footer[footerLen-8:], tableMagic)
	bomb = append(bomb, footer...)

	for name, data := range map[string][]byte{"growing keys": growing, "snappy bomb": bomb} {
		allocated := measureAlloc(func() {
			if _, err := ParseIndex(data); err == nil {
				t.Errorf("%s: ParseIndex succeeded", name)
			} else {
				t.Logf("%s (%d bytes): %v", name, len(data), err)
			}
		})
		if limit := uint64(2<<20 + 64*len(data)); allocated > limit {
			t.Errorf("%s: ParseIndex of %d bytes allocated %d bytes", name, len(data), allocated)
		}
	}
}

func measureAlloc(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestSnappy(t *testing.T) {
	tests := []struct {
		in   []byte
		want string
	}{
		{[]byte{0}, ""},
		{[]byte{3, 2 << 2, 'a', 'b', 'c'}, "abc"},
		// "abc" then a 1-byte-offset copy of 9 bytes at offset 3 (overlapping).
		{[]byte{12, 2 << 2, 'a', 'b', 'c', (9-4)<<2 | 1, 3}, "abcabcabcabc"},
		// A 2-byte-offset copy: length 5, offset 2.
		{[]byte{7, 1 << 2, 'x', 'y', (5-1)<<2 | 2, 2, 0}, "xyxyxyx"},
		// A 4-byte-offset copy: length 3, offset 1.
		{[]byte{4, 0, 'q', (3-1)<<2 | 3, 1, 0, 0, 0}, "qqqq"},
		// A literal with a 1-byte extended length (60 => length-1 in next byte).
		{append([]byte{70, 60 << 2, 69}, bytes.Repeat([]byte{'z'}, 70)...), strings.Repeat("z", 70)},
	}
	for _, tt := range tests {
		got, err := snappyDecode(tt.in)
		if err != nil || string(got) != tt.want {
			t.Errorf("snappyDecode(%v) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range [][]byte{
		nil,
		{0xff},                                  // truncated length
		{5, 1 << 2, 'a', 'b'},                   // short output
		{2, 2 << 2, 'a', 'b', 'c'},              // literal overflows
		{3, 4 << 2, 'a'},                        // truncated literal
		{4, 0, 'a', (3-1)<<2 | 2, 2, 0},         // offset beyond output
		{4, 0, 'a', (3-1)<<2 | 2, 0, 0},         // zero offset
		{4, 0, 'a', (4-1)<<2 | 2, 1, 0},         // copy overflows
		{4, 0, 'a', 1},                          // truncated copy
		{4, 0, 'a', 3, 1, 0},                    // truncated 4-byte copy
		{4, 0, 'a', 63 << 2},                    // truncated literal length
		{0xff, 0xff, 0xff, 0xff, 0x0f, 0},       // length beyond the ratio bound
		{0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0}, // length beyond 32 bits
	} {
		if got, err := snappyDecode(bad); err == nil {
			t.Errorf("snappyDecode(%v) = %q, want error", bad, got)
		}
	}
}

// Loading OpenAI's GPT-2 release: the directory holds "checkpoint",
// "model.ckpt.index" and "model.ckpt.data-00000-of-00001".
func ExampleOpenDir() {
	b, err := OpenDir("models/124M")
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	wte, err := b.Float32("model/wte") // checksum checked, no copy
	if err != nil {
		log.Fatal(err)
	}
	e, _ := b.Entry("model/wte")
	fmt.Println(e.Shape, len(wte)) // [50257 768] 38597376
}
