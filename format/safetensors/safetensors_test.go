package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/gpt2go/gpt2/format/half"
)

// fixturePath returns the path of a file under shared/fixtures, skipping
// the test when the shared directory is not there.
func fixturePath(t testing.TB, rel string) string {
	t.Helper()
	shared := os.Getenv("GPT2_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	p := filepath.Join(shared, "fixtures", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("fixture not available (%v); set GPT2_SHARED to the shared directory", err)
	}
	return p
}

func TestFixture(t *testing.T) {
	path := fixturePath(t, "tiny-real-vocab/model.safetensors")
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	if got := f.Metadata(); len(got) != 1 || got["format"] != "pt" {
		t.Errorf("Metadata() = %v, want map[format:pt]", got)
	}
	names := f.Names()
	if len(names) != 30 || !slices.IsSorted(names) {
		t.Errorf("Names() = %d names (sorted: %v), want 30 sorted", len(names), slices.IsSorted(names))
	}
	shapes := map[string][]int{
		"wte.weight":             {50257, 64},
		"wpe.weight":             {128, 64},
		"ln_f.weight":            {64},
		"ln_f.bias":              {64},
		"h.0.attn.bias":          {1, 1, 128, 128},
		"h.1.attn.bias":          {1, 1, 128, 128},
		"h.0.ln_1.weight":        {64},
		"h.1.ln_2.bias":          {64},
		"h.0.attn.c_attn.weight": {64, 192},
		"h.0.attn.c_attn.bias":   {192},
		"h.1.attn.c_proj.weight": {64, 64},
		"h.1.mlp.c_fc.weight":    {64, 256},
		"h.1.mlp.c_fc.bias":      {256},
		"h.0.mlp.c_proj.weight":  {256, 64},
		"h.0.mlp.c_proj.bias":    {64},
		"h.1.attn.c_attn.weight": {64, 192},
		"h.0.attn.c_proj.bias":   {64},
		"h.1.mlp.c_proj.weight":  {256, 64},
		"h.0.ln_2.weight":        {64},
		"h.1.ln_1.bias":          {64},
		"h.1.attn.c_attn.bias":   {192},
		"h.0.mlp.c_fc.bias":      {256},
		"h.1.mlp.c_proj.bias":    {64},
		"h.0.attn.c_proj.weight": {64, 64},
		"h.0.ln_1.bias":          {64},
		"h.0.ln_2.bias":          {64},
		"h.1.ln_1.weight":        {64},
		"h.1.ln_2.weight":        {64},
		"h.0.mlp.c_fc.weight":    {64, 256},
		"h.1.attn.c_proj.bias":   {64},
	}
	for name, want := range shapes {
		info, ok := f.Info(name)
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if info.DType != F32 || !slices.Equal(info.Shape, want) || info.Size != int64(4*info.NumElements()) {
			t.Errorf("%s: %s %v size %d, want F32 %v", name, info.DType, info.Shape, info.Size, want)
		}
	}

	// The causal-mask buffer is lower-triangular ones.
	mask, err := f.Float32("h.0.attn.bias")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 128 {
		for j := range 128 {
			want := float32(0)
			if j <= i {
				want = 1
			}
			if mask[i*128+j] != want {
				t.Fatalf("h.0.attn.bias[%d][%d] = %v, want %v", i, j, mask[i*128+j], want)
			}
		}
	}

	// F32 data in an 8-aligned file comes back as a view, not a copy.
	wte, err := f.Float32("wte.weight")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := f.Bytes("wte.weight")
	if len(wte) != 50257*64 || unsafe.Pointer(&wte[0]) != unsafe.Pointer(&raw[0]) {
		t.Errorf("Float32(wte.weight) is not a view of the mapping")
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*1000:])); wte[1000] != got {
		t.Errorf("wte[1000] = %v, want %v", wte[1000], got)
	}

	// Parse over the same bytes agrees with Open.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		a, _ := f.Bytes(name)
		b, _ := g.Bytes(name)
		ia, _ := f.Info(name)
		ib, _ := g.Info(name)
		if !bytes.Equal(a, b) || !equalInfo(ia, ib) {
			t.Errorf("%s: Open and Parse disagree", name)
		}
	}
}

func equalInfo(a, b TensorInfo) bool {
	return a.Name == b.Name && a.DType == b.DType && slices.Equal(a.Shape, b.Shape) && a.Offset == b.Offset && a.Size == b.Size
}

// sample returns a few tensors of assorted dtypes and shapes.
func sample() []Tensor {
	f16 := make([]byte, 2*3)
	for i, v := range []float32{1, -2.5, 65504} {
		binary.LittleEndian.PutUint16(f16[2*i:], half.F32ToF16(v))
	}
	bf16 := make([]byte, 2*2)
	for i, v := range []float32{3, -0.15625} {
		binary.LittleEndian.PutUint16(bf16[2*i:], half.F32ToBF16(v))
	}
	f64 := make([]byte, 8*2)
	for i, v := range []float64{1.5, -1e300} {
		binary.LittleEndian.PutUint64(f64[8*i:], math.Float64bits(v))
	}
	return []Tensor{
		F32Tensor("b.weight", []int{2, 3}, []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}),
		{Name: "half", DType: F16, Shape: []int{3}, Data: f16},
		{Name: "scalar", DType: F32, Shape: []int{}, Data: []byte{0, 0, 0x80, 0x3f}},
		{Name: "empty", DType: F32, Shape: []int{0, 7}, Data: nil},
		{Name: "brain", DType: BF16, Shape: []int{1, 2}, Data: bf16},
		{Name: `a "quoted" <name>\` + "\x01é", DType: U8, Shape: []int{5}, Data: []byte{1, 2, 3, 4, 5}},
		{Name: "double", DType: F64, Shape: []int{2}, Data: f64},
		{Name: "ints", DType: I64, Shape: []int{1}, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}},
	}
}

func encode(t testing.TB, tensors []Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, tensors, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	tensors := sample()
	meta := map[string]string{"format": "pt", "note": "line\nbreak \"q\" & <x>"}
	data := encode(t, tensors, meta)

	n := binary.LittleEndian.Uint64(data)
	if (8+n)%DataAlign != 0 {
		t.Errorf("data buffer starts at %d, not %d-aligned", 8+n, DataAlign)
	}
	var generic map[string]any
	if err := json.Unmarshal(data[8:8+n], &generic); err != nil {
		t.Fatalf("header is not JSON: %v", err)
	}

	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Metadata(); !mapsEqual(got, meta) {
		t.Errorf("Metadata() = %v, want %v", got, meta)
	}
	var want []string
	offset := int64(8 + n)
	for _, tt := range tensors {
		want = append(want, tt.Name)
		info, ok := f.Info(tt.Name)
		if !ok {
			t.Fatalf("missing %q", tt.Name)
		}
		if info.Name != tt.Name || info.DType != tt.DType || !slices.Equal(info.Shape, tt.Shape) ||
			info.Offset != offset || info.Size != int64(len(tt.Data)) {
			t.Errorf("Info(%q) = %+v", tt.Name, info)
		}
		offset += int64(len(tt.Data))
		b, err := f.Bytes(tt.Name)
		if err != nil || !bytes.Equal(b, tt.Data) {
			t.Errorf("Bytes(%q) = %v, %v; want %v", tt.Name, b, err, tt.Data)
		}
	}
	if offset != int64(len(data)) {
		t.Errorf("tensors end at %d, file is %d bytes", offset, len(data))
	}
	slices.Sort(want)
	if got := f.Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %q, want %q", got, want)
	}

	// Writing what was read gives the same bytes.
	var again []Tensor
	for _, tt := range tensors {
		info, _ := f.Info(tt.Name)
		b, _ := f.Bytes(tt.Name)
		again = append(again, Tensor{Name: info.Name, DType: info.DType, Shape: info.Shape, Data: b})
	}
	if data2 := encode(t, again, f.Metadata()); !bytes.Equal(data2, data) {
		t.Error("rewriting the parsed file changed its bytes")
	}

	// No tensors, no metadata.
	empty := encode(t, nil, nil)
	g, err := Parse(empty)
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Names()) != 0 || len(g.Metadata()) != 0 || len(empty)%DataAlign != 0 {
		t.Errorf("empty file: %q", empty)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFloat32(t *testing.T) {
	data := encode(t, sample(), nil)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		want []float32
	}{
		{"b.weight", []float32{1, 2, 3, 4, 5, float32(math.Inf(-1))}},
		{"half", []float32{1, -2.5, 65504}},
		{"brain", []float32{3, -0.15625}},
		{"double", []float32{1.5, float32(math.Inf(-1))}},
		{"scalar", []float32{1}},
		{"empty", []float32{}},
	}
	for _, tt := range tests {
		got, err := f.Float32(tt.name)
		if err != nil {
			t.Errorf("Float32(%q): %v", tt.name, err)
			continue
		}
		if got == nil || !slices.Equal(got, tt.want) {
			t.Errorf("Float32(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
	for _, name := range []string{"ints", `a "quoted" <name>\` + "\x01é"} {
		if _, err := f.Float32(name); err == nil || !strings.Contains(err.Error(), "cannot be read as float32") {
			t.Errorf("Float32(%q) error = %v", name, err)
		}
	}
	if _, err := f.Float32("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Float32(missing) error = %v, want ErrNotFound", err)
	}

	u, err := f.Uint16("half")
	if err != nil || len(u) != 3 || half.F16ToF32(u[1]) != -2.5 {
		t.Errorf("Uint16(half) = %v, %v", u, err)
	}
	if _, err := f.Uint16("b.weight"); err == nil {
		t.Error("Uint16 of F32 data succeeded")
	}
}

// TestAlignment checks that F32 data is a view exactly when it is aligned,
// and a correct copy when it is not.
func TestAlignment(t *testing.T) {
	file := encode(t, []Tensor{F32Tensor("x", []int{3}, []float32{1, 2, 3})}, nil)
	backing := make([]float64, len(file)/8+2) // 8-aligned storage
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&backing[0])), len(backing)*8)
	for shift := range 4 {
		data := raw[shift : shift+len(file)]
		copy(data, file)
		f, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		v, err := f.Float32("x")
		if err != nil || !slices.Equal(v, []float32{1, 2, 3}) {
			t.Fatalf("shift %d: Float32 = %v, %v", shift, v, err)
		}
		b, _ := f.Bytes("x")
		isView := unsafe.Pointer(&v[0]) == unsafe.Pointer(&b[0])
		if want := shift == 0 && binary.NativeEndian.Uint16([]byte{1, 0}) == 1; isView != want {
			t.Errorf("shift %d: view = %v, want %v", shift, isView, want)
		}
	}
}

func TestOpenClose(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	if err := WriteFile(path, sample(), map[string]string{"k": "v"}); err != nil {
		t.Fatal(err)
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Float32("half"); err != nil || v[2] != 65504 {
		t.Fatalf("Float32 = %v, %v", v, err)
	}
	_, err = f.Float32("missing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path and wrap ErrNotFound", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Bytes("half"); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Bytes after Close: %v, want os.ErrClosed", err)
	}

	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
	bad := filepath.Join(dir, "bad.safetensors")
	os.WriteFile(bad, []byte("\xff\xff\xff\xff\xff\xff\xff\xff{}"), 0o644)
	if _, err := Open(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), bad) {
		t.Errorf("Open(bad) = %v, want ErrInvalid naming the path", err)
	}
}

// file builds a file from a raw JSON header and a data buffer.
func file(header string, buf []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, buf...)
}

func TestInvalid(t *testing.T) {
	buf := make([]byte, 16)
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short", []byte{1, 0, 0}, "too short"},
		{"header longer than file", binary.LittleEndian.AppendUint64(nil, 100), "exceeds the 0 bytes"},
		{"huge header length", append(binary.LittleEndian.AppendUint64(nil, math.MaxUint64), "{}"...), "header length"},
		{"empty header", file("", nil), "unexpected EOF"},
		{"not an object", file("[]", nil), "found [ where { was expected"},
		{"bad JSON", file(`{"a":`, buf), "header"},
		{"bad JSON 2", file(`{"a":{"dtype":"F32",}}`, buf), "invalid character"},
		{"trailing garbage", file(`{}x`, nil), "after the JSON object"},
		{"two objects", file(`{}{}`, nil), "after the JSON object"},
		{"invalid UTF-8", file("{\"\xff\":{}}", nil), "UTF-8"},
		{"unknown dtype", file(`{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`, buf), `unknown dtype "F33"`},
		{"sub-byte dtype", file(`{"a":{"dtype":"F4","shape":[2],"data_offsets":[0,1]}}`, buf), `unknown dtype "F4"`},
		{"missing dtype", file(`{"a":{"shape":[1],"data_offsets":[0,4]}}`, buf), "missing dtype"},
		{"null shape", file(`{"a":{"dtype":"F32","shape":null,"data_offsets":[0,4]}}`, buf), "missing shape"},
		{"missing offsets", file(`{"a":{"dtype":"F32","shape":[1]}}`, buf), "missing data_offsets"},
		{"dtype not string", file(`{"a":{"dtype":1,"shape":[1],"data_offsets":[0,4]}}`, buf), "dtype"},
		{"duplicate field", file(`{"a":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, buf), "duplicate dtype"},
		{"duplicate tensor", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, buf), "duplicate tensor"},
		{"negative dim", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, buf), "invalid dimension"},
		{"fractional dim", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, buf), "shape"},
		{"shape/size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, buf), "needs 8 bytes"},
		{"shape overflow", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, buf), "more than 2^63"},
		{"shape overflow 2", file(`{"a":{"dtype":"F64","shape":[1152921504606846976],"data_offsets":[0,8]}}`, buf), "more than 2^63"},
		{"dim beyond int64", file(`{"a":{"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]}}`, buf), "shape"},
		{"offsets outside", file(`{"a":{"dtype":"F32","shape":[5],"data_offsets":[0,20]}}`, buf), "outside the 16-byte data buffer"},
		{"offsets far outside", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[9223372036854775806,9223372036854775807]}}`, buf), "outside"},
		{"negative offset", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, buf), "outside"},
		{"reversed offsets", file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}`, buf), "outside"},
		{"three offsets", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, buf), "has 3 elements"},
		{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, buf), "overlap"},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, nil), "__metadata__"},
		{"metadata twice", file(`{"__metadata__":{},"__metadata__":{}}`, nil), "duplicate __metadata__"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse succeeded: %v", f.Names())
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %q does not match ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "safetensors: ") {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestValidEdgeCases(t *testing.T) {
	buf := make([]byte, 16)
	for _, data := range [][]byte{
		file(`{}`, nil),
		file("  \t\n{ }\n  ", nil),
		file(`{"__metadata__":null}`, nil),
		file(`{"a":{"dtype":"F32","shape":[0,`+strconv.Itoa(math.MaxInt)+`],"data_offsets":[3,3]}}`, buf), // zero elements
		file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[8,12],"extra":{"x":[1]}}}`, buf),             // gap, unknown field
		file(`{"a":{"dtype":"U8","shape":[0],"data_offsets":[2,2]},"b":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, buf),
	} {
		if _, err := Parse(data); err != nil {
			t.Errorf("Parse(%q): %v", data, err)
		}
	}
}

func TestTruncated(t *testing.T) {
	data := encode(t, sample(), map[string]string{"format": "pt"})
	for n := range len(data) {
		if _, err := Parse(data[:n]); err == nil {
			t.Fatalf("Parse of the first %d of %d bytes succeeded", n, len(data))
		} else if !errors.Is(err, ErrInvalid) {
			t.Fatalf("prefix %d: error %v does not match ErrInvalid", n, err)
		}
	}
}

// TestAllocBound checks that sizes claimed by a header never turn into
// allocations.
func TestAllocBound(t *testing.T) {
	for _, data := range [][]byte{
		binary.LittleEndian.AppendUint64(nil, 1<<62),
		file(`{"a":{"dtype":"F32","shape":[1073741824,1073741824],"data_offsets":[0,4611686018427387904]}}`, nil),
		file(`{"a":{"dtype":"U8","shape":[4611686018427387904],"data_offsets":[0,4611686018427387904]}}`, nil),
		file(`{"a":{"dtype":"U8","shape":[4611686018427387904],"data_offsets":[0,4611686018427387904]}}`, make([]byte, 64)),
	} {
		allocated := measureAlloc(func() {
			if _, err := Parse(data); err == nil {
				t.Errorf("Parse(%q) succeeded", data)
			}
		})
		if limit := 64 << 10; allocated > uint64(limit) {
			t.Errorf("Parse(%q) allocated %d bytes", data, allocated)
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

func TestWriteInvalid(t *testing.T) {
	good := F32Tensor("x", []int{1}, []float32{1})
	tests := []struct {
		name    string
		tensors []Tensor
		meta    map[string]string
		want    string
	}{
		{"duplicate", []Tensor{good, good}, nil, "duplicate name"},
		{"reserved", []Tensor{{Name: "__metadata__", DType: U8, Shape: []int{0}}}, nil, "reserved"},
		{"bad dtype", []Tensor{{Name: "y", DType: "X", Shape: []int{0}}}, nil, "unknown dtype"},
		{"size", []Tensor{{Name: "y", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}, nil, "needs 8 bytes, have 4"},
		{"negative", []Tensor{{Name: "y", DType: F32, Shape: []int{-1}}}, nil, "negative"},
		{"utf8 name", []Tensor{{Name: "\xff", DType: U8, Shape: []int{0}}}, nil, "UTF-8"},
		{"utf8 meta", nil, map[string]string{"k": "\xfe"}, "UTF-8"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := Write(&buf, tt.tensors, tt.meta)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Write error = %v, want %q", tt.name, err, tt.want)
		}
		if buf.Len() != 0 {
			t.Errorf("%s: Write wrote %d bytes before failing", tt.name, buf.Len())
		}
	}
	if err := Write(failWriter{}, []Tensor{good}, nil); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write to a failing writer: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	old := []byte("previous contents")
	if err := os.WriteFile(path, old, 0o644); err != nil {
		t.Fatal(err)
	}
	checkUnchanged := func(what string) {
		t.Helper()
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, old) {
			t.Errorf("%s: file changed to %q (%v)", what, got, err)
		}
		if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: temporary file left behind (%v)", what, err)
		}
	}

	// Invalid tensors: nothing is written at all.
	bad := []Tensor{{Name: "y", DType: F32, Shape: []int{2}, Data: make([]byte, 4)}}
	if err := WriteFile(path, bad, nil); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("WriteFile(invalid) = %v, want an error naming the path", err)
	}
	checkUnchanged("invalid tensors")

	// A failure after the data was written (here, fsync).
	syncFile = func(*os.File) error { return errors.New("injected sync failure") }
	err := WriteFile(path, sample(), nil)
	syncFile = (*os.File).Sync
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Errorf("WriteFile with failing sync = %v", err)
	}
	checkUnchanged("failed sync")

	// The temporary file cannot be created.
	if err := WriteFile(filepath.Join(dir, "no", "such", "dir"), sample(), nil); err == nil {
		t.Error("WriteFile into a missing directory succeeded")
	}

	// Success replaces the file with exactly what Write produces.
	if err := WriteFile(path, sample(), map[string]string{"a": "b"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := encode(t, sample(), map[string]string{"a": "b"}); !bytes.Equal(got, want) {
		t.Error("WriteFile and Write disagree")
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file left behind (%v)", err)
	}
}

func TestDTypeSize(t *testing.T) {
	for d, want := range map[DType]int{F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1,
		U64: 8, U32: 4, U16: 2, U8: 1, Bool: 1, F8E4M3: 1, F8E5M2: 1, F8E8M0: 1, C64: 8, "f32": 0, "": 0} {
		if got := d.Size(); got != want {
			t.Errorf("%q.Size() = %d, want %d", d, got, want)
		}
	}
}

func ExampleWrite() {
	var buf bytes.Buffer
	tensors := []Tensor{F32Tensor("w", []int{2, 2}, []float32{1, 2, 3, 4})}
	if err := Write(&buf, tensors, map[string]string{"format": "pt"}); err != nil {
		panic(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		panic(err)
	}
	info, _ := f.Info("w")
	v, _ := f.Float32("w")
	fmt.Println(info.DType, info.Shape, v)
	// Output: F32 [2 2] [1 2 3 4]
}
