package main

import (
	"encoding/json"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
)

// TestQuantize writes the fixture in each reduced weight type and checks
// that model.Load reads the files back to exactly the weights an in-memory
// conversion gives (same logits, bit for bit), from either source format,
// and that other commands run on the result.
func TestQuantize(t *testing.T) {
	for _, src := range []string{fixture.HFDir(t), fixture.OpenAIDir(t)} {
		base, err := model.Load(src)
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close()
		ids := []int{464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13}
		for _, to := range []string{"q8_0", "f16", "bf16"} {
			out := filepath.Join(t.TempDir(), "m")
			msg := gpt2OK(t, "", "quantize", "--to", to, "--model", src, "--out", out)
			if !strings.Contains(msg, to) {
				t.Errorf("quantize says %q", msg)
			}
			q, err := model.Load(out)
			if err != nil {
				t.Fatalf("%s: %v", to, err)
			}
			dt, _ := kernels.ParseDType(to)
			if q.WeightType() != dt {
				t.Errorf("%s: loaded weights are %v", to, q.WeightType())
			}
			want, err := base.Convert(dt)
			if err != nil {
				t.Fatal(err)
			}
			a, err := q.Forward([]model.Step{{Cache: q.NewCache(), Tokens: ids, All: true}})
			if err != nil {
				t.Fatal(err)
			}
			b, err := want.Forward([]model.Step{{Cache: want.NewCache(), Tokens: ids, All: true}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(a[0], b[0]) {
				t.Errorf("%s from %s: the file's logits differ from an in-memory conversion", to, src)
			}
			q.Close()
			gpt2OK(t, "", "score", "--model", out, "--ids", "464,2068,7586")
		}
	}
}

func TestQuantizeErrors(t *testing.T) {
	hf := fixture.HFDir(t)
	out := t.TempDir()
	gpt2Fails(t, "", []string{"quantize", "--model", hf, "--out", out}, "--to")
	gpt2Fails(t, "", []string{"quantize", "--to", "f32", "--model", hf, "--out", out}, "q8_0")
	gpt2Fails(t, "", []string{"quantize", "--to", "q4", "--model", hf, "--out", out}, "q8_0")
	gpt2Fails(t, "", []string{"quantize", "--to", "f16", "--model", hf, "--out", hf}, "--out")
	gpt2Fails(t, "", []string{"quantize", "--to", "f16", "--model", filepath.Join(out, "missing"), "--out", out}, "missing")
}

// TestBench runs bench on the fixture, briefly, and checks its JSON.
func TestBench(t *testing.T) {
	hf := fixture.HFDir(t)
	for _, dt := range []string{"f32", "q8_0"} {
		out := gpt2OK(t, "", "bench", "--model", hf, "--dtype", dt, "--json", "--threads", "2",
			"--prompt", "16", "--decode", "4", "--runs", "1", "--copy-mib", "16")
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bench --json printed %q: %v", out, err)
		}
		for _, k := range []string{"threads", "copy_bandwidth_gbs", "fma_peak_gflops", "load_seconds", "prefill_tokens_per_s",
			"prefill_gflops", "prefill_peak_fraction", "decode_tokens_per_s", "decode_bytes_per_token", "decode_bandwidth_fraction", "read_bandwidth_gbs", "decode_read_fraction", "peak_rss_bytes"} {
			if v, ok := r[k].(float64); !ok || !(v > 0) {
				t.Errorf("%s: %s = %v, want a positive number", dt, k, r[k])
			}
		}
		if r["dtype"] != dt || r["threads"] != 2.0 {
			t.Errorf("dtype %v threads %v, want %s and 2", r["dtype"], r["threads"], dt)
		}
		// The fractions are of the ceilings reported (the higher of the two
		// measurements), not of the first measurement.
		f := func(k string) float64 { v, _ := r[k].(float64); return v }
		decodeRate := f("decode_bytes_per_token") * f("decode_tokens_per_s") / 1e9
		for _, c := range []struct {
			name      string
			got, want float64
		}{
			{"prefill_peak_fraction", f("prefill_peak_fraction"), f("prefill_gflops") / f("fma_peak_gflops")},
			{"decode_bandwidth_fraction", f("decode_bandwidth_fraction"), decodeRate / f("copy_bandwidth_gbs")},
			{"decode_read_fraction", f("decode_read_fraction"), decodeRate / f("read_bandwidth_gbs")},
		} {
			if math.Abs(c.got-c.want) > 1e-9*c.want {
				t.Errorf("%s: %s = %v, want %v from the ceilings reported", dt, c.name, c.got, c.want)
			}
		}
	}
	gpt2Fails(t, "", []string{"bench", "--dtype", "f8"}, "f8")
	gpt2Fails(t, "", []string{"bench", "--model", hf, "--prompt", "1000"}, "context")
}
