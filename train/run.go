package train

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/gpt2go/gpt2/internal/progress"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
	"github.com/gpt2go/gpt2/train/data"
)

// Options configure a training run. The flag tags name the command-line
// flags that set them; a resumed run takes every option from its saved
// state except those set on its command line (Options.Set).
type Options struct {
	Init   string       `json:"init,omitempty" flag:"init"` // checkpoint to start from
	Config model.Config `json:"config" flag:"-"`            // shape of a fresh model, when Init is empty
	Data   string       `json:"data" flag:"data"`           // token shard file or directory
	Val    string       `json:"val,omitempty" flag:"val"`   // validation shards; default: Data's val_*.bin
	Batch  int          `json:"batch" flag:"batch"`         // B
	Seq    int          `json:"seq" flag:"seq"`             // T
	Accum  int          `json:"accum" flag:"accum"`         // micro-batches per step
	Steps  int          `json:"steps" flag:"steps"`         // total optimizer steps
	LR     float64      `json:"lr" flag:"lr"`
	// MinLR is the cosine schedule's final rate; negative means LR (a
	// constant rate after warmup).
	MinLR       float64 `json:"min_lr" flag:"min-lr"`
	Warmup      int     `json:"warmup" flag:"warmup"`
	Beta1       float64 `json:"beta1" flag:"beta1"`
	Beta2       float64 `json:"beta2" flag:"beta2"`
	Eps         float64 `json:"eps" flag:"eps"`
	WeightDecay float64 `json:"weight_decay" flag:"weight-decay"`
	GradClip    float64 `json:"grad_clip" flag:"grad-clip"` // 0: off
	Seed        uint64  `json:"seed" flag:"seed"`
	Shuffle     bool    `json:"shuffle" flag:"shuffle"`
	EvalEvery   int     `json:"eval_every" flag:"eval-every"` // 0: never
	EvalBatches int     `json:"eval_batches" flag:"eval-batches"`
	SaveEvery   int     `json:"save_every" flag:"save-every"` // 0: only at the end
	SaveDType   string  `json:"save_dtype" flag:"save-dtype"`
	Out         string  `json:"out,omitempty" flag:"out"`
	LogJSON     string  `json:"log_json,omitempty" flag:"log-json"`

	Resume string          `json:"-" flag:"-"` // checkpoint directory to continue
	Set    map[string]bool `json:"-" flag:"-"` // flags given explicitly, which override a resumed run's
}

// DefaultOptions are the defaults of gpt2 train.
func DefaultOptions() Options {
	return Options{Batch: 4, Seq: 64, Accum: 1, Steps: 100, LR: 3e-4, MinLR: -1, Beta1: 0.9, Beta2: 0.95,
		Eps: 1e-8, WeightDecay: 0.1, GradClip: 1, Seed: 1337, EvalEvery: 0, EvalBatches: 20, SaveDType: "f32"}
}

// mergeResumed returns the saved options with those set explicitly in o
// replacing theirs.
func mergeResumed(saved, o Options) Options {
	out := saved
	sv, ov := reflect.ValueOf(&out).Elem(), reflect.ValueOf(o)
	for i := range sv.NumField() {
		f := sv.Type().Field(i)
		if name := f.Tag.Get("flag"); name != "-" && o.Set[name] {
			sv.Field(i).Set(ov.Field(i))
		}
	}
	out.Resume, out.Set = o.Resume, o.Set
	if out.Out == "" {
		out.Out = o.Resume
	}
	return out
}

func (o *Options) validate() error {
	switch {
	case o.Data == "":
		return errors.New("train: --data is required (token shards from gpt2 prepare, or an llm.c .bin file)")
	case o.Batch <= 0 || o.Seq <= 0 || o.Accum <= 0:
		return fmt.Errorf("train: --batch %d, --seq %d and --accum %d must be positive", o.Batch, o.Seq, o.Accum)
	case o.Steps < 0:
		return fmt.Errorf("train: --steps %d must be >= 0", o.Steps)
	case !(o.LR >= 0) || math.IsInf(o.LR, 0):
		return fmt.Errorf("train: --lr %g must be a non-negative number", o.LR)
	case o.Warmup < 0:
		return fmt.Errorf("train: --warmup %d must be >= 0", o.Warmup)
	case !(o.Beta1 >= 0 && o.Beta1 < 1) || !(o.Beta2 >= 0 && o.Beta2 < 1):
		return fmt.Errorf("train: --beta1 %g and --beta2 %g must be in [0, 1)", o.Beta1, o.Beta2)
	case !(o.Eps > 0):
		return fmt.Errorf("train: --eps %g must be positive", o.Eps)
	case !(o.WeightDecay >= 0) || !(o.GradClip >= 0):
		return fmt.Errorf("train: --weight-decay %g and --grad-clip %g must be >= 0", o.WeightDecay, o.GradClip)
	case o.EvalEvery < 0 || o.SaveEvery < 0 || o.EvalBatches <= 0:
		return fmt.Errorf("train: --eval-every %d and --save-every %d must be >= 0 and --eval-batches %d positive", o.EvalEvery, o.SaveEvery, o.EvalBatches)
	case o.SaveDType != "f32" && o.SaveDType != "f16" && o.SaveDType != "":
		return fmt.Errorf("train: --save-dtype %q: want f32 or f16", o.SaveDType)
	}
	return nil
}

// stepRecord is one line of the --log-json file.
type stepRecord struct {
	Step       int      `json:"step"`
	Loss       float64  `json:"loss"`
	LR         float64  `json:"lr"`
	GradNorm   float64  `json:"grad_norm"`
	TokensPerS float64  `json:"tokens_per_s"`
	ValLoss    *float64 `json:"val_loss,omitempty"`
}

// Run trains as o says, reporting progress on stderr. When ctx is
// cancelled (an interrupt) it saves a checkpoint after the current step and
// returns ctx's error.
func Run(ctx context.Context, o Options, stderr io.Writer) (err error) {
	crash := crashHook()
	var state *State
	var params []float32
	if o.Resume != "" {
		st, p, name, err := loadCheckpoint(o.Resume)
		if err != nil {
			return err
		}
		state, params = st, p
		o = mergeResumed(st.Options, o)
		fmt.Fprintf(stderr, "train: resuming %s at step %d\n", filepath.Join(o.Resume, name), st.Step)
	}
	if err := o.validate(); err != nil {
		return err
	}
	if o.MinLR < 0 {
		o.MinLR = o.LR
	}

	tokDir := o.Init
	if state != nil {
		tokDir = o.Resume // its first save wrote the run's tokenizer there
	}
	tok, err := loadTokenizer(tokDir)
	if err != nil {
		return err
	}
	var l *Layout
	switch {
	case state != nil:
		l, err = NewLayout(state.Config)
	case o.Init != "":
		var m *model.Model
		if m, err = model.Load(o.Init); err != nil {
			return fmt.Errorf("train: %w", err)
		}
		if l, err = NewLayout(m.Config); err == nil {
			params, err = Flatten(l, m)
		}
		m.Close()
	default:
		if o.Config.VocabSize == 0 {
			o.Config.VocabSize = tok.VocabSize()
		}
		if o.Config.LayerNormEps == 0 {
			o.Config.LayerNormEps = 1e-5
		}
		if l, err = NewLayout(o.Config); err == nil {
			params = make([]float32, l.Size)
			Init(l, params, o.Seed)
		}
	}
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	o.Config = l.Config
	cfg := l.Config
	if o.Seq > cfg.NCtx {
		return fmt.Errorf("train: --seq %d exceeds the model's context n_ctx %d", o.Seq, cfg.NCtx)
	}

	// Data, checked in full before any training.
	paths, err := data.Shards(o.Data, "train")
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	loader, err := data.Open(paths, o.Batch, o.Seq, data.Options{Vocab: cfg.VocabSize, Shuffle: o.Shuffle, Seed: o.Seed})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer loader.Close()
	var val *data.Loader
	if o.EvalEvery > 0 {
		valPath := o.Val
		if valPath == "" {
			if st, err := os.Stat(o.Data); err == nil && st.IsDir() {
				if vp, err := data.Shards(o.Data, "val"); err == nil && len(vp) > 0 {
					valPath = o.Data
				}
			}
		}
		if valPath != "" {
			vp, err := data.Shards(valPath, "val")
			if err != nil {
				return fmt.Errorf("train: --val: %w", err)
			}
			if val, err = data.Open(vp, o.Batch, o.Seq, data.Options{Vocab: cfg.VocabSize}); err != nil {
				return fmt.Errorf("train: --val: %w", err)
			}
			defer val.Close()
		} else {
			fmt.Fprintln(stderr, "train: no validation data (--val, or val_*.bin beside the training shards); not evaluating")
		}
	}

	g, err := NewGPT(l, params, o.Batch, o.Seq)
	if err != nil {
		return err
	}
	opt := NewAdamW(l.Size, o.Beta1, o.Beta2, o.Eps, o.WeightDecay)
	start := 0
	var hist History
	if state != nil {
		if err := checkData(state.Data, loader); err != nil {
			return err
		}
		if err := loader.Seek(state.Data.Position); err != nil {
			return fmt.Errorf("train: resume: %w", err)
		}
		copy(opt.M, state.M)
		copy(opt.V, state.V)
		opt.Step = state.AdamStep
		start = state.Step
		if start >= o.Steps {
			return fmt.Errorf("train: the run in %s is at step %d already; pass a larger --steps to continue it", o.Resume, start)
		}
		hist = state.History
		hist.Train = hist.Train[:min(len(hist.Train), start)]
	}

	logw, err := openLog(o.LogJSON, start, state != nil)
	if err != nil {
		return err
	}
	if logw != nil {
		defer func() {
			if cerr := logw.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("train: --log-json: %w", cerr)
			}
		}()
	}

	var sv *saver
	if o.Out != "" {
		sv = &saver{dir: o.Out, tok: tok, dtype: SaveDType(o.SaveDType), crash: func(p string) { crash(p, -1) }}
	} else {
		fmt.Fprintln(stderr, "train: no --out directory; the trained model will not be saved")
	}
	save := func(step int) error {
		if sv == nil {
			return nil
		}
		sv.crash = func(p string) { crash(p, step) }
		st := &State{Step: step, Config: cfg, Options: o, History: hist, AdamStep: opt.Step, M: opt.M, V: opt.V,
			Data: DataState{Position: loader.Position()}}
		for _, p := range loader.Paths() {
			st.Data.Shards = append(st.Data.Shards, filepath.Base(p))
		}
		st.Data.Tokens = loader.Lens()
		if err := sv.save(l, g.Params, st); err != nil {
			return err
		}
		if err := PlotLoss(filepath.Join(o.Out, "loss.png"), hist); err != nil {
			fmt.Fprintf(stderr, "train: %v\n", err)
		}
		return nil
	}

	sched := Schedule{LR: o.LR, MinLR: o.MinLR, Warmup: o.Warmup, Steps: o.Steps}
	tokensPerStep := o.Batch * o.Seq * o.Accum
	fmt.Fprintf(stderr, "train: %d parameters (n_layer %d, n_head %d, n_embd %d, n_ctx %d), %d tokens of data, %d tokens per step, steps %d..%d\n",
		l.Size, cfg.NLayer, cfg.NHead, cfg.NEmbd, cfg.NCtx, loader.Tokens(), tokensPerStep, start, o.Steps)
	rep := progress.New(stderr, 5*time.Second)
	defer rep.Done()
	runStart := time.Now()
	lastSaved := -1
	for k := start; k < o.Steps; k++ {
		t0 := time.Now()
		var valLoss *float64
		if val != nil && (k%o.EvalEvery == 0 || k == o.Steps-1) {
			v, err := evaluate(g, val, o.EvalBatches)
			if err != nil {
				return err
			}
			valLoss = &v
			hist.Val = append(hist.Val, ValPoint{Step: k, Loss: v})
		}
		g.ZeroGrad()
		var loss float64
		for range o.Accum {
			l, err := g.Forward(loader.Next())
			if err != nil {
				return err
			}
			g.Backward(float32(1 / float64(o.Accum)))
			loss += l
		}
		loss /= float64(o.Accum)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("train: the loss at step %d is %g; lower --lr or set --grad-clip", k, loss)
		}
		crash("step", k)
		norm := GradNorm(g.Grads)
		lr := sched.At(k)
		opt.Update(l, g.Params, g.Grads, lr, ClipScale(norm, o.GradClip))
		hist.Train = append(hist.Train, loss)

		dt := time.Since(t0).Seconds()
		rec := stepRecord{Step: k, Loss: loss, LR: lr, GradNorm: norm, TokensPerS: float64(tokensPerStep) / dt, ValLoss: valLoss}
		if logw != nil {
			if err := logw.write(rec); err != nil {
				return err
			}
		}
		done := k + 1 - start
		eta := time.Duration(float64(time.Since(runStart)) / float64(done) * float64(o.Steps-k-1))
		line := fmt.Sprintf("step %d/%d  loss %.4f", k+1, o.Steps, loss)
		if valLoss != nil {
			line += fmt.Sprintf("  val %.4f", *valLoss)
		}
		rep.Update("%s  lr %.3g  |g| %.3g  %.0f tokens/s  ETA %s", line, lr, norm, rec.TokensPerS, progress.Duration(eta))
		if valLoss != nil && !rep.Terminal() {
			rep.Print("train: step %d val loss %.4f", k, *valLoss)
		}

		interrupted := ctx.Err() != nil
		if sv != nil && (interrupted || (o.SaveEvery > 0 && (k+1)%o.SaveEvery == 0)) {
			if err := save(k + 1); err != nil {
				return err
			}
			lastSaved = k + 1
		}
		if interrupted {
			rep.Done()
			fmt.Fprintf(stderr, "train: interrupted after step %d", k+1)
			if sv != nil {
				fmt.Fprintf(stderr, "; saved to %s (continue with --resume %s)", o.Out, o.Out)
			}
			fmt.Fprintln(stderr)
			return ctx.Err()
		}
	}
	rep.Done()
	if sv != nil && lastSaved != o.Steps {
		if err := save(o.Steps); err != nil {
			return err
		}
	}
	if sv != nil {
		fmt.Fprintf(stderr, "train: saved step %d to %s\n", o.Steps, o.Out)
	}
	return nil
}

// evaluate returns the mean loss over the first n batches of val.
func evaluate(g *GPT, val *data.Loader, n int) (float64, error) {
	val.Reset()
	var sum float64
	for range n {
		l, err := g.Forward(val.Next())
		if err != nil {
			return 0, err
		}
		sum += l
	}
	return sum / float64(n), nil
}

// checkData refuses to resume on data other than the run's.
func checkData(saved DataState, l *data.Loader) error {
	var names []string
	for _, p := range l.Paths() {
		names = append(names, filepath.Base(p))
	}
	if !slices.Equal(names, saved.Shards) || !slices.Equal(l.Lens(), saved.Tokens) {
		return fmt.Errorf("train: resume: the training data differs from the saved run's (shards %v with %v tokens, now %v with %v); the data position would be meaningless",
			saved.Shards, saved.Tokens, names, l.Lens())
	}
	return nil
}

// loadTokenizer returns the tokenizer of the model directory dir, if it
// has its files, else GPT-2's.
func loadTokenizer(dir string) (*tokenizer.Tokenizer, error) {
	if dir != "" {
		for _, f := range []string{"vocab.json", "encoder.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				tok, err := tokenizer.LoadDir(dir)
				if err != nil {
					return nil, fmt.Errorf("train: %w", err)
				}
				return tok, nil
			}
		}
	}
	return tokenizer.Default(), nil
}

// logWriter appends step records to the --log-json file.
type logWriter struct {
	f *os.File
	w *bufio.Writer
}

// openLog opens the log for a run starting at step start. A resumed run
// keeps the records of the steps before start and drops later ones, which
// a killed run may have logged after its last checkpoint.
func openLog(path string, start int, resumed bool) (*logWriter, error) {
	if path == "" {
		return nil, nil
	}
	var keep []byte
	if resumed {
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("train: --log-json: %w", err)
		}
		for line := range strings.Lines(string(old)) {
			var r struct {
				Step *int `json:"step"`
			}
			if json.Unmarshal([]byte(line), &r) == nil && r.Step != nil && *r.Step < start && strings.HasSuffix(line, "\n") {
				keep = append(keep, line...)
			}
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("train: --log-json: %w", err)
	}
	if _, err := f.Write(keep); err != nil {
		f.Close()
		return nil, fmt.Errorf("train: --log-json: %w", err)
	}
	return &logWriter{f: f, w: bufio.NewWriter(f)}, nil
}

func (lw *logWriter) write(r stepRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("train: --log-json: %w", err)
	}
	lw.w.Write(append(b, '\n'))
	// Each record reaches the file before the next step, so a killed run's
	// log is complete up to its last step.
	if err := lw.w.Flush(); err != nil {
		return fmt.Errorf("train: --log-json: %w", err)
	}
	return nil
}

func (lw *logWriter) Close() error { return lw.f.Close() }

// crashHook returns the test hook that kills the process at a named point
// (GPT2_TRAIN_CRASH=point@step, e.g. "save-latest@6" or "step@4"), the
// way a kill -9 would: no deferred code runs.
func crashHook() func(point string, step int) {
	spec := os.Getenv("GPT2_TRAIN_CRASH")
	if spec == "" {
		return func(string, int) {}
	}
	return func(point string, step int) {
		if spec == fmt.Sprintf("%s@%d", point, step) {
			p, err := os.FindProcess(os.Getpid())
			if err == nil {
				p.Kill()
			}
			select {} // wait for the signal
		}
	}
}
