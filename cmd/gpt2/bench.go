package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/quant"
)

// benchResult is bench's JSON output.
type benchResult struct {
	Threads                 int     `json:"threads"`
	DType                   string  `json:"dtype"`
	Kernels                 string  `json:"kernels"`
	CopyBandwidthGBs        float64 `json:"copy_bandwidth_gbs"`
	ReadBandwidthGBs        float64 `json:"read_bandwidth_gbs"`
	FMAPeakGFLOPs           float64 `json:"fma_peak_gflops"`
	LoadSeconds             float64 `json:"load_seconds"`
	FileBytes               int64   `json:"file_bytes"`
	PrefillTokens           int     `json:"prefill_tokens"`
	PrefillTokensPerS       float64 `json:"prefill_tokens_per_s"`
	PrefillGFLOPs           float64 `json:"prefill_gflops"`
	PrefillPeakFraction     float64 `json:"prefill_peak_fraction"`
	DecodeTokens            int     `json:"decode_tokens"`
	DecodeTokensPerS        float64 `json:"decode_tokens_per_s"`
	DecodeBytesPerToken     int64   `json:"decode_bytes_per_token"`
	DecodeBandwidthFraction float64 `json:"decode_bandwidth_fraction"`
	DecodeReadFraction      float64 `json:"decode_read_fraction"`
	PeakRSSBytes            int64   `json:"peak_rss_bytes"`
	Runs                    int     `json:"runs"`
}

func newBenchCmd() *cobra.Command {
	var (
		modelPath, dtype     string
		jsonOut              bool
		prompt, decode, runs int
		copyMiB              int
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure this machine's limits and the model's speed against them",
		Long: `Bench measures the machine's ceilings, then the model against them:

  copy bandwidth   memory copy, GB/s of bytes read plus written, 1 GiB buffers
                   (far past the caches), vector loop with streaming stores
                   that fetches 4 KiB ahead into L2
  read bandwidth   memory read, GB/s, summing a 1 GiB buffer with the same
                   loop's loads: a read waits for its data where a streaming
                   store does not, so this is often well under the copy's
  FMA peak         float32 fused multiply-add GFLOP/s, independent chains
  load             time of model.Load (the weights are mapped, not read)
  prefill          tokens/s for one --prompt-token prompt (default 512), the
                   GFLOP/s that is and its fraction of the FMA peak
  decode           tokens/s generating --decode tokens (default 128) one at a
                   time from an empty cache, batch 1; the weight bytes each
                   token reads and the fractions of copy and of read
                   bandwidth that is
  peak RSS         the process's high-water mark (VmHWM) from the load on

The ceilings are measured before the model and again after it, and the
higher of each is kept: a ceiling is the best the machine does, and one
measured while other load held the machine back would flatter the model.
Each timing is the median of --runs runs (default 5) after a warm-up run;
on a shared machine the spread is wide, so say so when quoting them. All
use --threads threads. Prefill GFLOP/s counts 24·C²·n per block (its four
matrices), causal attention (4·C per pair of positions) and the output
projection of the last position. Without --model the model is GPT-2 124M's
shape with seeded random weights, written to a temporary safetensors file
and loaded from it like any other; --dtype converts the weights (q8_0, f16,
bf16) first.

--json prints one object: threads, dtype, kernels, copy_bandwidth_gbs,
read_bandwidth_gbs, fma_peak_gflops, load_seconds, file_bytes,
prefill_tokens, prefill_tokens_per_s, prefill_gflops, prefill_peak_fraction,
decode_tokens, decode_tokens_per_s, decode_bytes_per_token,
decode_bandwidth_fraction, decode_read_fraction, peak_rss_bytes, runs.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if prompt < 1 || decode < 1 || runs < 1 {
				return usageError{errors.New("--prompt, --decode and --runs must be positive")}
			}
			var dt kernels.DType
			if dtype != "" {
				var err error
				if dt, err = kernels.ParseDType(dtype); err != nil {
					return usageError{fmt.Errorf("--dtype: %w", err)}
				}
			}
			if copyMiB < 1 {
				return usageError{errors.New("--copy-mib must be positive")}
			}
			return runBench(cmd.OutOrStdout(), cmd.ErrOrStderr(), benchOptions{
				modelPath: modelPath, convert: dtype != "", dtype: dt, json: jsonOut,
				prompt: prompt, decode: decode, runs: runs, copyBytes: copyMiB << 20,
			})
		},
	}
	cmd.Flags().StringVar(&modelPath, "model", "", "model to measure (default: a random GPT-2 124M)")
	cmd.Flags().StringVar(&dtype, "dtype", "", "weight type to run: f32, f16, bf16 or q8_0 (default: the model's own)")
	cmd.Flags().BoolVar(&jsonOut, "json", false, "print one JSON object")
	cmd.Flags().IntVar(&prompt, "prompt", 512, "prefill prompt length in tokens")
	cmd.Flags().IntVar(&decode, "decode", 128, "tokens to decode per run")
	cmd.Flags().IntVar(&runs, "runs", 5, "timed runs per measurement (median reported)")
	// Small copy buffers measure the caches, not memory; tests use them to
	// run quickly.
	cmd.Flags().IntVar(&copyMiB, "copy-mib", 1024, "size of each copy buffer in MiB")
	cmd.Flags().MarkHidden("copy-mib")
	return cmd
}

type benchOptions struct {
	modelPath            string
	convert              bool // to dtype
	dtype                kernels.DType
	json                 bool
	prompt, decode, runs int
	copyBytes            int
}

func runBench(stdout, stderr io.Writer, o benchOptions) error {
	modelPath, convert, dt, jsonOut := o.modelPath, o.convert, o.dtype, o.json
	prompt, decode, runs := o.prompt, o.decode, o.runs
	progress := func(format string, args ...any) {
		if !jsonOut {
			fmt.Fprintf(stderr, format+"\n", args...)
		}
	}
	r := benchResult{Threads: kernels.Threads(), Kernels: kernels.Impl(), Runs: runs, PrefillTokens: prompt, DecodeTokens: decode}

	path := modelPath
	if path == "" {
		dir, err := os.MkdirTemp("", "gpt2-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		progress("writing a random GPT-2 124M model to %s...", dir)
		if err := writeRandomModel(dir, dt); err != nil {
			return err
		}
		path, convert = dir, false
		freeMemory()
	}
	if st, err := os.Stat(path); err == nil {
		file := path
		if st.IsDir() {
			file = filepath.Join(path, "model.safetensors")
		}
		if fi, err := os.Stat(file); err == nil {
			r.FileBytes = fi.Size()
		}
	}

	// The load maps the file and reads its header; the weights are read
	// when first used, and are what the peak RSS from here on is about.
	resetPeakRSS()
	start := time.Now()
	m, err := model.Load(path)
	if err != nil {
		return err
	}
	r.LoadSeconds = time.Since(start).Seconds()
	defer m.Close()
	if prompt > m.Config.NCtx || decode > m.Config.NCtx {
		return usageError{fmt.Errorf("--prompt %d or --decode %d does not fit the model's context of %d", prompt, decode, m.Config.NCtx)}
	}
	run := m
	if convert && dt != m.WeightType() {
		progress("converting the weights to %v in memory...", dt)
		if run, err = m.Convert(dt); err != nil {
			return err
		}
	}
	r.DType = run.WeightType().String()
	cfg := run.Config

	// The ceilings, here and again after the model (see measureCeilings).
	progress("measuring copy and read bandwidth and FMA peak on %d threads...", r.Threads)
	measureCeilings(&r, o.copyBytes)
	freeMemory()
	resetPeakRSS()

	rng := rand.New(rand.NewPCG(1, 2))
	ids := make([]int, max(prompt, decode))
	for i := range ids {
		ids[i] = rng.IntN(cfg.VocabSize)
	}

	progress("prefill: %d tokens, %d runs after a warm-up...", prompt, runs)
	cache := run.NewCache()
	prefillTimes, err := timeRuns(runs, func() error {
		cache.Reset()
		_, err := run.Forward([]model.Step{{Cache: cache, Tokens: ids[:prompt]}})
		return err
	})
	if err != nil {
		return err
	}
	tp := median(prefillTimes)
	r.PrefillTokensPerS = float64(prompt) / tp
	r.PrefillGFLOPs = prefillFLOPs(cfg, prompt) / tp / 1e9

	progress("decode: %d tokens at batch 1, %d runs after a warm-up...", decode, runs)
	logits := make([]float32, cfg.VocabSize) // reused, as a decoding loop does
	decodeTimes, err := timeRuns(runs, func() error {
		cache.Reset()
		for _, id := range ids[:decode] {
			if _, err := run.ForwardInto(logits, []model.Step{{Cache: cache, Tokens: []int{id}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	td := median(decodeTimes)
	r.DecodeTokensPerS = float64(decode) / td
	r.DecodeBytesPerToken = run.WeightBytes()
	r.PeakRSSBytes = peakRSS() // before the bandwidth buffers

	progress("measuring the ceilings again...")
	measureCeilings(&r, o.copyBytes)
	r.PrefillPeakFraction = r.PrefillGFLOPs / r.FMAPeakGFLOPs
	r.DecodeBandwidthFraction = float64(r.DecodeBytesPerToken) * r.DecodeTokensPerS / (r.CopyBandwidthGBs * 1e9)
	r.DecodeReadFraction = float64(r.DecodeBytesPerToken) * r.DecodeTokensPerS / (r.ReadBandwidthGBs * 1e9)

	if jsonOut {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, string(b))
		return nil
	}
	spread := func(ts []float64) string {
		return fmt.Sprintf("median of %d, range %.3g-%.3g s", len(ts), slices.Min(ts), slices.Max(ts))
	}
	w := func(format string, args ...any) { fmt.Fprintf(stdout, format+"\n", args...) }
	w("threads %d, kernels %s, weights %s, GOMAXPROCS %d", r.Threads, r.Kernels, r.DType, runtime.GOMAXPROCS(0))
	w("copy bandwidth   %8.1f GB/s (read + written)", r.CopyBandwidthGBs)
	w("read bandwidth   %8.1f GB/s", r.ReadBandwidthGBs)
	w("FMA peak         %8.1f GFLOP/s", r.FMAPeakGFLOPs)
	w("load             %8.3f s (%s, %.1f MiB)", r.LoadSeconds, path, float64(r.FileBytes)/(1<<20))
	w("prefill          %8.1f tokens/s  %.1f GFLOP/s = %.0f%% of FMA peak  (%d tokens; %s)",
		r.PrefillTokensPerS, r.PrefillGFLOPs, 100*r.PrefillPeakFraction, prompt, spread(prefillTimes))
	w("decode           %8.1f tokens/s  %.1f MiB/token = %.1f GB/s = %.0f%% of copy, %.0f%% of read bandwidth  (%d tokens; %s)",
		r.DecodeTokensPerS, float64(r.DecodeBytesPerToken)/(1<<20), float64(r.DecodeBytesPerToken)*r.DecodeTokensPerS/1e9,
		100*r.DecodeBandwidthFraction, 100*r.DecodeReadFraction, decode, spread(decodeTimes))
	rssNote := ""
	if r.FileBytes > 0 {
		rssNote = fmt.Sprintf(" = %.2fx the file", float64(r.PeakRSSBytes)/float64(r.FileBytes))
	}
	w("peak RSS         %8.1f MiB%s (since the load; of it a KV cache of %.1f MiB%s)", float64(r.PeakRSSBytes)/(1<<20), rssNote,
		float64(2*cfg.NLayer*cfg.NCtx*cfg.NEmbd*4)/(1<<20), residentSplit())
	return nil
}

// timeRuns runs f once to warm up, then runs times, returning the seconds
// each timed run took.
func timeRuns(runs int, f func() error) ([]float64, error) {
	if err := f(); err != nil {
		return nil, err
	}
	var ts []float64
	for range runs {
		start := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		ts = append(ts, time.Since(start).Seconds())
	}
	return ts, nil
}

func median(ts []float64) float64 {
	s := slices.Clone(ts)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measureCeilings measures the machine's copy and read bandwidth (with
// buffers of size bytes) and FMA peak, keeping in r the higher of each
// measurement and what r holds already.
func measureCeilings(r *benchResult, size int) {
	r.CopyBandwidthGBs = max(r.CopyBandwidthGBs, kernels.MeasureCopyBandwidthSize(size))
	r.ReadBandwidthGBs = max(r.ReadBandwidthGBs, kernels.MeasureReadBandwidthSize(size))
	r.FMAPeakGFLOPs = max(r.FMAPeakGFLOPs, kernels.MeasureFMAPeak(r.Threads))
}

// prefillFLOPs counts the floating-point operations (a multiply-add is
// two) of a forward pass over n tokens from an empty cache that returns
// the last position's logits: the four matrices of each block for every
// token, causal attention (scores and weighted values, n(n+1)/2 pairs per
// head), and the output projection for one token. Layer norms, GELU and
// softmax are left out; they are a fraction of a percent.
func prefillFLOPs(c model.Config, n int) float64 {
	C, N := float64(c.NEmbd), float64(n)
	matrices := 2 * N * 12 * C * C
	attention := 2 * 2 * C * N * (N + 1) / 2
	return float64(c.NLayer)*(matrices+attention) + 2*C*float64(c.VocabSize)
}

// writeRandomModel writes a GPT-2 124M-shaped model with seeded random
// weights, stored as dt, into dir.
func writeRandomModel(dir string, dt kernels.DType) error {
	m, err := model.New(model.Presets["gpt2"])
	if err != nil {
		return err
	}
	randomWeights(m, 1)
	q, err := m.Convert(dt)
	if err != nil {
		return err
	}
	return quant.Save(dir, q, nil)
}

// randomWeights fills m's weights in the manner of GPT-2's initialisation:
// matrices and embeddings about N(0, 0.02), layer-norm gains 1, biases 0.
// The values only need to be plausible.
func randomWeights(m *model.Model, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed))
	fill := func(v []float32) {
		for i := range v {
			v[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
	fill(m.WTE.F32)
	fill(m.WPE)
	for i := range m.Blocks {
		b := &m.Blocks[i]
		for _, v := range [][]float32{b.Attn.W.F32, b.AttnProj.W.F32, b.FC.W.F32, b.FCProj.W.F32} {
			fill(v)
		}
		for _, g := range [][]float32{b.LN1G, b.LN2G} {
			for j := range g {
				g[j] = 1
			}
		}
	}
	for j := range m.LNFG {
		m.LNFG[j] = 1
	}
}

// freeMemory returns what the garbage collector can free to the system, so
// that the peak RSS measured next is the model's, not the set-up's.
func freeMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// resetPeakRSS resets the kernel's record of the process's peak resident
// set (VmHWM), where Linux allows it.
func resetPeakRSS() {
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// residentSplit describes the resident set now: file-backed (the mapped
// weights) and anonymous (heap), from /proc/self/smaps_rollup, or "".
func residentSplit() string {
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return ""
	}
	kb := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[2] == "kB" {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			kb[strings.TrimSuffix(f[0], ":")] = v
		}
	}
	return fmt.Sprintf("; now %.1f MiB mapped from files, %.1f MiB anonymous", float64(kb["Pss_File"])/1024, float64(kb["Anonymous"])/1024)
}

// peakRSS returns the process's peak resident set in bytes: VmHWM, or 0
// where /proc is not available.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
