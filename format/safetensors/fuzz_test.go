package safetensors

import (
	"bytes"
	"encoding/binary"
	"os"
	"slices"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add(encode(f, sample(), map[string]string{"format": "pt"}))
	f.Add(encode(f, nil, nil))
	f.Add(encode(f, []Tensor{F32Tensor("x", []int{2}, []float32{1, 2})}, nil))
	f.Add(file(`{"a":{"dtype":"BF16","shape":[2],"data_offsets":[1,5]},"__metadata__":{"k":"v"}}`, make([]byte, 6)))
	// The fixture's header, followed by a little data: enough for the
	// fuzzer to learn the structure of a real file.
	shared := os.Getenv("GPT2_SHARED")
	if shared == "" {
		shared = "../../../shared"
	}
	if data, err := os.ReadFile(shared + "/fixtures/tiny-real-vocab/model.safetensors"); err == nil {
		n := binary.LittleEndian.Uint64(data)
		f.Add(data[:8+n+64])
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		var file *File
		var err error
		allocated := measureAlloc(func() { file, err = Parse(data) })
		// A header claim must never become an allocation: what parsing
		// allocates is bounded by the input size.
		if limit := 256<<10 + 64*uint64(len(data)); allocated > limit {
			t.Fatalf("Parse of %d bytes allocated %d bytes", len(data), allocated)
		}
		if err != nil {
			return
		}
		// Everything a valid file reports must be consistent and readable,
		// and writing it back must give a file that parses the same.
		var tensors []Tensor
		for _, name := range file.Names() {
			info, ok := file.Info(name)
			if !ok || info.Name != name {
				t.Fatalf("Info(%q) = %+v, %v", name, info, ok)
			}
			b, err := file.Bytes(name)
			if err != nil || int64(len(b)) != info.Size || info.Offset < 8 || info.Offset+info.Size > int64(len(data)) {
				t.Fatalf("Bytes(%q): %d bytes, %v; info %+v", name, len(b), err, info)
			}
			if int64(info.NumElements())*int64(info.DType.Size()) != info.Size {
				t.Fatalf("%q: %d elements of %s in %d bytes", name, info.NumElements(), info.DType, info.Size)
			}
			if v, err := file.Float32(name); err == nil && len(v) != info.NumElements() {
				t.Fatalf("Float32(%q) has %d elements, want %d", name, len(v), info.NumElements())
			}
			if v, err := file.Uint16(name); err == nil && len(v) != info.NumElements() {
				t.Fatalf("Uint16(%q) has %d elements, want %d", name, len(v), info.NumElements())
			}
			tensors = append(tensors, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: b})
		}
		var buf bytes.Buffer
		if err := Write(&buf, tensors, file.Metadata()); err != nil {
			t.Fatalf("Write of a parsed file: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("Parse of a rewritten file: %v", err)
		}
		if !slices.Equal(again.Names(), file.Names()) || !mapsEqual(again.Metadata(), file.Metadata()) {
			t.Fatal("rewritten file differs")
		}
		for _, tt := range tensors {
			info, _ := again.Info(tt.Name)
			b, _ := again.Bytes(tt.Name)
			if info.DType != tt.DType || !slices.Equal(info.Shape, tt.Shape) || !bytes.Equal(b, tt.Data) {
				t.Fatalf("tensor %q changed on rewrite", tt.Name)
			}
		}
	})
}
