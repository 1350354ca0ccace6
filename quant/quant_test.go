package quant_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gpt2go/gpt2/format/safetensors"
	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/quant"
)

// mappedFrom returns the file that the memory at p is mapped from, per
// /proc/self/maps, or "" if it is not a file mapping (heap, say).
func mappedFrom(t *testing.T, p unsafe.Pointer) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	addr := uintptr(p)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		var lo, hi uintptr
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
			t.Fatal(err)
		}
		if lo <= addr && addr < hi {
			if len(fields) >= 6 {
				return fields[5]
			}
			return ""
		}
	}
	return ""
}

// matData returns the address of a matrix's stored data.
func matData(w *kernels.Mat) unsafe.Pointer {
	switch w.DType {
	case kernels.F32:
		return unsafe.Pointer(&w.F32[0])
	case kernels.F16, kernels.BF16:
		return unsafe.Pointer(&w.U16[0])
	}
	return unsafe.Pointer(&w.Q8[0])
}

// TestSaveLoad saves the fixture in every weight type and loads it back:
// the weight matrices must be the saved ones, used in place from the
// mapped file rather than copied, and give the same logits.
func TestSaveLoad(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("checks the mapping through /proc/self/maps")
	}
	src := fixture.HFDir(t)
	base, err := model.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	// The float32 fixture itself is used in place.
	if got := mappedFrom(t, matData(&base.WTE)); !strings.HasSuffix(got, "model.safetensors") {
		t.Errorf("f32 wte is not a view of the mapped file (it is in %q)", got)
	}
	ids := []int{464, 2068, 7586, 21831, 18045, 625}
	for _, dt := range []kernels.DType{kernels.F32, kernels.F16, kernels.BF16, kernels.Q8_0} {
		want, err := base.Convert(dt)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := quant.Save(dir, want, nil); err != nil {
			t.Fatal(err)
		}
		got, err := model.Load(dir)
		if err != nil {
			t.Fatalf("%v: %v", dt, err)
		}
		file := filepath.Join(dir, "model.safetensors")
		for name, w := range map[string]*kernels.Mat{"wte": &got.WTE, "h.1.mlp.c_fc": &got.Blocks[1].FC.W} {
			if w.DType != dt {
				t.Errorf("%v: %s loaded as %v", dt, name, w.DType)
			}
			if m := mappedFrom(t, matData(w)); m != file {
				t.Errorf("%v: %s is not a view of %s (it is in %q)", dt, name, file, m)
			}
		}
		if dt == kernels.Q8_0 && !got.Blocks[1].FC.W.T {
			t.Errorf("q8_0: c_fc loaded in rows, not transposed for the integer kernels")
		}
		a, err := got.Forward([]model.Step{{Cache: got.NewCache(), Tokens: ids, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		b, err := want.Forward([]model.Step{{Cache: want.NewCache(), Tokens: ids, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a[0], b[0]) {
			t.Errorf("%v: loaded model's logits differ from the saved one's", dt)
		}
		f, err := safetensors.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		if md := f.Metadata(); md["gpt2.weight_type"] != dt.String() || md["format"] != "pt" {
			t.Errorf("%v: metadata %v", dt, md)
		}
		f.Close()
		got.Close()
	}
}

// TestLoadQ8Rows: q8_0 files whose linear layers are stored [in, out]
// with their blocks along the output axis (what gpt2 quantize wrote before
// the integer kernels) still load, as such, and run.
func TestLoadQ8Rows(t *testing.T) {
	base, err := model.Load(fixture.HFDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	old := *base
	old.Blocks = slices.Clone(base.Blocks)
	conv := func(w *kernels.Mat) {
		c, err := w.Convert(kernels.Q8_0)
		if err != nil {
			t.Fatal(err)
		}
		*w = c
	}
	conv(&old.WTE)
	for i := range old.Blocks {
		b := &old.Blocks[i]
		for _, w := range []*kernels.Mat{&b.Attn.W, &b.AttnProj.W, &b.FC.W, &b.FCProj.W} {
			conv(w)
		}
	}
	dir := t.TempDir()
	if err := quant.Save(dir, &old, nil); err != nil {
		t.Fatal(err)
	}
	got, err := model.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if w := got.Blocks[0].FC.W; w.DType != kernels.Q8_0 || w.T {
		t.Fatalf("c_fc loaded as %v, transposed %v; want q8_0 in rows", w.DType, w.T)
	}
	ids := []int{464, 2068, 7586, 21831}
	a, err := got.Forward([]model.Step{{Cache: got.NewCache(), Tokens: ids}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := old.Forward([]model.Step{{Cache: old.NewCache(), Tokens: ids}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a[0], b[0]) {
		t.Error("loaded model's logits differ from the saved one's")
	}
}
