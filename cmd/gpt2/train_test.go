package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/train"
	"github.com/gpt2go/gpt2/train/data"
)

type logRecord struct {
	Step       int      `json:"step"`
	Loss       float64  `json:"loss"`
	LR         float64  `json:"lr"`
	GradNorm   float64  `json:"grad_norm"`
	TokensPerS float64  `json:"tokens_per_s"`
	ValLoss    *float64 `json:"val_loss"`
}

func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var recs []logRecord
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: bad line %q: %v", path, sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// The llm.c-format fixture through the command line: the logged losses
// and gradient norm, then the saved model's loss and weights.
func TestTrainStreamFixture(t *testing.T) {
	// Once with the fastest kernels and once with the portable Go ones.
	for _, impl := range []string{"default", "generic"} {
		t.Run(impl, func(t *testing.T) {
			if impl != "default" {
				t.Setenv("GPT2_KERNELS", impl)
			}
			trainStreamFixture(t)
		})
	}
}

func trainStreamFixture(t *testing.T) {
	dir := fixture.HFDir(t)
	var e struct {
		InitialLoss       float64            `json:"initial_loss"`
		GradGlobalL2Norm  float64            `json:"grad_global_l2_norm"`
		Losses            []float64          `json:"losses"`
		FinalParamL2Norms map[string]float64 `json:"final_param_l2_norms"`
		Batch             struct {
			Tokens [][]int `json:"tokens"`
		} `json:"batch"`
	}
	fixture.ReadJSON(t, filepath.Join(dir, "train_stream_expected.json"), &e)
	tmp := t.TempDir()
	logPath, out := filepath.Join(tmp, "log.jsonl"), filepath.Join(tmp, "out")
	gpt2OK(t, "", "train", "--init", dir, "--data", filepath.Join(dir, "train.bin"), "--batch", "2", "--seq", "32",
		"--steps", "10", "--lr", "1e-3", "--beta1", "0.9", "--beta2", "0.95", "--eps", "1e-8", "--weight-decay", "0.1",
		"--grad-clip", "0", "--log-json", logPath, "--out", out)
	recs := readLog(t, logPath)
	if len(recs) != 10 {
		t.Fatalf("%d log records, want 10", len(recs))
	}
	rel := func(a, b float64) float64 { return math.Abs(a-b) / math.Abs(b) }
	if r := rel(recs[0].Loss, e.InitialLoss); r > 1e-5 {
		t.Errorf("initial loss %.9g, want %.9g", recs[0].Loss, e.InitialLoss)
	}
	if r := rel(recs[0].GradNorm, e.GradGlobalL2Norm); r > 1e-5 {
		t.Errorf("initial grad norm %.9g, want %.9g", recs[0].GradNorm, e.GradGlobalL2Norm)
	}
	for k, r := range recs {
		if r.Step != k || rel(r.Loss, e.Losses[k]) > 1e-5 || r.LR != 1e-3 || r.TokensPerS <= 0 {
			t.Errorf("record %d = %+v, want step %d loss %.9g lr 1e-3", k, r, k, e.Losses[k])
		}
	}

	// The loss after the 10th step, and the final weights, from the saved
	// model.
	m, err := model.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := train.NewLayout(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	params, err := train.Flatten(l, m)
	if err != nil {
		t.Fatal(err)
	}
	for i, ts := range l.Tensors {
		got := math.Sqrt(train.SumSquares(l.Slice(params, i)))
		if r := rel(got, e.FinalParamL2Norms[ts.Name]); r > 1e-4 {
			t.Errorf("final norm of %s = %.9g, want %.9g", ts.Name, got, e.FinalParamL2Norms[ts.Name])
		}
	}
	g, err := train.NewGPT(l, params, 2, 32)
	if err != nil {
		t.Fatal(err)
	}
	var inputs, targets []int
	for _, row := range e.Batch.Tokens {
		inputs = append(inputs, row[:32]...)
		targets = append(targets, row[1:]...)
	}
	loss, err := g.ForwardRows(inputs, targets)
	if err != nil {
		t.Fatal(err)
	}
	if r := rel(loss, e.Losses[10]); r > 1e-5 {
		t.Errorf("loss after step 10: %.9g, want %.9g", loss, e.Losses[10])
	}
	for _, f := range []string{"config.json", "vocab.json", "merges.txt", "loss.png", "latest", "ckpt-000010/train_state.bin"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("checkpoint: %v", err)
		}
	}
}

// Bad data is refused before training, naming the file.
func TestTrainBadData(t *testing.T) {
	dir := fixture.HFDir(t)
	raw, err := os.ReadFile(filepath.Join(dir, "train.bin"))
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	magic := bytes.Clone(raw)
	binary.LittleEndian.PutUint32(magic, 7)
	vocab := bytes.Clone(raw)
	binary.LittleEndian.PutUint16(vocab[data.HeaderSize+2*10:], 60000)
	for _, c := range []struct {
		file string
		want string
		args []string
	}{
		{write("magic.bin", magic), "wrong magic number 7", nil},
		{write("trunc.bin", raw[:len(raw)-1]), "truncated", nil},
		{write("vocab.bin", vocab), "token 60000 at position 10 is outside the model's vocabulary of 50257", nil},
		{filepath.Join(dir, "train.bin"), "fewer than one batch needs", []string{"--seq", "64"}},
	} {
		args := append([]string{"train", "--init", dir, "--data", c.file, "--batch", "2", "--seq", "32", "--steps", "1"}, c.args...)
		gpt2Fails(t, "", args, c.want, c.file)
	}
	gpt2Fails(t, "", []string{"train", "--init", dir}, "--data is required")
	gpt2Fails(t, "", []string{"train", "--data", filepath.Join(dir, "train.bin"), "--config", "gpt3"}, "gpt2-medium")
}

// makeCorpus writes some text files and prepares them into shards.
func makeCorpus(t *testing.T) string {
	t.Helper()
	words := strings.Fields("the a cat dog sat ran on under mat tree big small red quickly slowly and but then it was")
	texts := t.TempDir()
	x := uint32(1)
	for f := range 6 {
		var b strings.Builder
		for i := range 400 {
			x = x*1664525 + 1013904223
			b.WriteString(words[x>>16%uint32(len(words))])
			if i%13 == 12 {
				b.WriteString(".\n")
			} else {
				b.WriteByte(' ')
			}
		}
		if err := os.WriteFile(filepath.Join(texts, fmt.Sprintf("doc%d.txt", f)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "data")
	stdout := gpt2OK(t, "", "prepare", "--out", out, "--val-fraction", "0.15", "--shard-tokens", "1000", texts)
	if !strings.Contains(stdout, "5 train documents") || !strings.Contains(stdout, "1 validation documents") {
		t.Fatalf("prepare: %q", stdout)
	}
	return out
}

// A run killed at any point (mid-step, or between any two writes of a
// save) and resumed logs exactly the losses of an uninterrupted run and
// ends with the same weights.
func TestTrainKillResume(t *testing.T) {
	corpus := makeCorpus(t)
	args := func(out, log string) []string {
		return []string{"train", "--threads", "2", "--data", corpus, "--n-layer", "1", "--n-head", "2", "--n-embd", "16",
			"--n-ctx", "32", "--batch", "1", "--seq", "8", "--accum", "2", "--steps", "6", "--lr", "1e-2", "--min-lr", "1e-3",
			"--warmup", "2", "--grad-clip", "1", "--eval-every", "2", "--eval-batches", "1", "--save-every", "2",
			"--shuffle", "--out", out, "--log-json", log}
	}
	refDir := t.TempDir()
	refOut, refLog := filepath.Join(refDir, "out"), filepath.Join(refDir, "log.jsonl")
	gpt2OK(t, "", args(refOut, refLog)...)
	ref := readLog(t, refLog)
	if len(ref) != 6 || ref[0].ValLoss == nil || ref[2].ValLoss == nil || ref[5].ValLoss == nil || ref[1].ValLoss != nil {
		t.Fatalf("reference log: %+v", ref)
	}
	refModel, err := os.ReadFile(filepath.Join(refOut, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}

	start := func(out, log, crash string) *exec.Cmd {
		cmd := exec.Command(os.Args[0], args(out, log)...)
		cmd.Env = append(os.Environ(), runAsGPT2+"=1", "GPT2_TRAIN_CRASH="+crash)
		cmd.Stderr = new(bytes.Buffer)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	check := func(t *testing.T, out, log string) {
		t.Helper()
		// The last good checkpoint loads as a model, killed or not.
		if _, err := os.Stat(filepath.Join(out, "latest")); err == nil {
			m, err := model.Load(out)
			if err != nil {
				t.Fatalf("after the kill: %v", err)
			}
			m.Close()
		}
		// With another thread count than the interrupted run's: the
		// arithmetic does not depend on it.
		gpt2OK(t, "", "train", "--threads", "1", "--resume", out)
		got := readLog(t, log)
		if len(got) != len(ref) {
			t.Fatalf("resumed log has %d records, want %d", len(got), len(ref))
		}
		for k := range ref {
			if got[k].Step != k || got[k].Loss != ref[k].Loss || got[k].GradNorm != ref[k].GradNorm || got[k].LR != ref[k].LR ||
				(got[k].ValLoss == nil) != (ref[k].ValLoss == nil) || (got[k].ValLoss != nil && *got[k].ValLoss != *ref[k].ValLoss) {
				t.Fatalf("step %d: resumed %+v, uninterrupted %+v", k, got[k], ref[k])
			}
		}
		final, err := os.ReadFile(filepath.Join(out, "model.safetensors"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(final, refModel) {
			t.Fatal("final weights differ from the uninterrupted run's")
		}
	}
	for _, point := range []string{"step@3", "save-model@4", "save-state@4", "save-rename@4", "save-export@4", "save-latest@4", "step@0"} {
		t.Run(point, func(t *testing.T) {
			dir := t.TempDir()
			out, log := filepath.Join(dir, "out"), filepath.Join(dir, "log.jsonl")
			cmd := start(out, log, point)
			err := cmd.Wait()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
				t.Fatalf("the run was not killed: %v; stderr %s", err, cmd.Stderr)
			}
			if point == "step@0" {
				// Nothing saved yet: there is nothing to resume, and saying so
				// is the right answer.
				gpt2Fails(t, "", []string{"train", "--resume", out}, "no training checkpoint")
				return
			}
			check(t, out, log)
		})
	}
	t.Run("async", func(t *testing.T) {
		dir := t.TempDir()
		out, log := filepath.Join(dir, "out"), filepath.Join(dir, "log.jsonl")
		cmd := start(out, log, "")
		// Kill it once a checkpoint exists, wherever it is then.
		deadline := time.Now().Add(30 * time.Second)
		for {
			if _, err := os.Stat(filepath.Join(out, "latest")); err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		cmd.Process.Kill()
		cmd.Wait()
		check(t, out, log)
	})
}
