package train

import (
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/train/data"
)

// trainExpected is the part of train_expected.json (and
// train_stream_expected.json) the tests use.
type trainExpected struct {
	Batch struct {
		B, T   int
		Tokens [][]int `json:"tokens"`
	} `json:"batch"`
	Optimizer struct {
		LR          float64   `json:"lr"`
		Betas       []float64 `json:"betas"`
		Eps         float64   `json:"eps"`
		WeightDecay float64   `json:"weight_decay"`
		DecayParams []string  `json:"decay_params"`
		Steps       int       `json:"steps"`
	} `json:"optimizer"`
	InitialLoss       float64            `json:"initial_loss"`
	GradL2Norms       map[string]float64 `json:"grad_l2_norms"`
	GradGlobalL2Norm  float64            `json:"grad_global_l2_norm"`
	Losses            []float64          `json:"losses"`
	FinalParamL2Norms map[string]float64 `json:"final_param_l2_norms"`
	BatchPositions    []int              `json:"batch_positions"`
}

func loadTrainExpected(t *testing.T, name string) *trainExpected {
	var e trainExpected
	fixture.ReadJSON(t, filepath.Join(fixture.HFDir(t), name), &e)
	if len(e.Losses) != e.Optimizer.Steps+1 || len(e.GradL2Norms) == 0 || len(e.FinalParamL2Norms) == 0 {
		t.Fatalf("%s: unexpected contents (%d losses for %d steps)", name, len(e.Losses), e.Optimizer.Steps)
	}
	return &e
}

func relErr(got, want float64) float64 { return math.Abs(got-want) / math.Abs(want) }

// loadFixtureGPT loads the tiny reference model for training.
func loadFixtureGPT(t *testing.T, b, seq int) *GPT {
	t.Helper()
	m, err := model.Load(fixture.HFDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := NewLayout(m.Config)
	if err != nil {
		t.Fatal(err)
	}
	params, err := Flatten(l, m)
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGPT(l, params, b, seq)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// withKernels runs fn with each kernel implementation this machine has:
// the portable Go one and the SIMD ones.
func withKernels(t *testing.T, fn func(t *testing.T)) {
	defer kernels.SetImpl(kernels.Impl())
	for _, name := range kernels.Impls() {
		t.Run(name, func(t *testing.T) {
			if err := kernels.SetImpl(name); err != nil {
				t.Fatal(err)
			}
			fn(t)
		})
	}
}

func TestTrainExpected(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		e := loadTrainExpected(t, "train_expected.json")
		B, T := e.Batch.B, e.Batch.T
		g := loadFixtureGPT(t, B, T)
		inputs, targets := make([]int, 0, B*T), make([]int, 0, B*T)
		for _, row := range e.Batch.Tokens {
			inputs = append(inputs, row[:T]...)
			targets = append(targets, row[1:]...)
		}
		step := func() float64 {
			loss, err := g.ForwardRows(inputs, targets)
			if err != nil {
				t.Fatal(err)
			}
			return loss
		}
		checkTrainRun(t, e, g, step)
	})
}

// checkTrainRun checks the initial loss and gradients and 10 AdamW steps
// of the fixture's run; forward runs one forward pass on the batch.
func checkTrainRun(t *testing.T, e *trainExpected, g *GPT, forward func() float64) {
	t.Helper()
	l := g.Layout
	loss := forward()
	if r := relErr(loss, e.InitialLoss); r > 1e-5 {
		t.Errorf("initial loss %.9g, want %.9g (rel err %.2g)", loss, e.InitialLoss, r)
	}
	g.ZeroGrad()
	g.Backward(1)
	if len(e.GradL2Norms) != len(l.Tensors) {
		t.Errorf("fixture has %d gradient norms, layout %d tensors", len(e.GradL2Norms), len(l.Tensors))
	}
	for i, ts := range l.Tensors {
		want, ok := e.GradL2Norms[ts.Name]
		if !ok {
			t.Errorf("no expected gradient norm for %s", ts.Name)
			continue
		}
		got := math.Sqrt(SumSquares(l.Slice(g.Grads, i)))
		if r := relErr(got, want); r > 1e-5 {
			t.Errorf("grad norm of %s = %.9g, want %.9g (rel err %.2g)", ts.Name, got, want, r)
		}
	}
	if got := math.Sqrt(SumSquares(g.Grads)); relErr(got, e.GradGlobalL2Norm) > 1e-5 {
		t.Errorf("global grad norm %.9g, want %.9g", got, e.GradGlobalL2Norm)
	}

	var decayed []string
	for _, ts := range l.Tensors {
		if ts.Decay {
			decayed = append(decayed, ts.Name)
		}
	}
	if !slices.Equal(decayed, e.Optimizer.DecayParams) {
		t.Errorf("decayed tensors %v, fixture decays %v", decayed, e.Optimizer.DecayParams)
	}

	opt := NewAdamW(l.Size, e.Optimizer.Betas[0], e.Optimizer.Betas[1], e.Optimizer.Eps, e.Optimizer.WeightDecay)
	for k := 1; k <= e.Optimizer.Steps; k++ {
		opt.Update(l, g.Params, g.Grads, e.Optimizer.LR, 1)
		loss := forward()
		if r := relErr(loss, e.Losses[k]); r > 1e-5 {
			t.Errorf("loss after step %d: %.9g, want %.9g (rel err %.2g)", k, loss, e.Losses[k], r)
		}
		g.ZeroGrad()
		g.Backward(1)
	}
	for i, ts := range l.Tensors {
		want := e.FinalParamL2Norms[ts.Name]
		got := math.Sqrt(SumSquares(l.Slice(g.Params, i)))
		if r := relErr(got, want); r > 1e-4 {
			t.Errorf("final norm of %s = %.9g, want %.9g (rel err %.2g)", ts.Name, got, want, r)
		}
	}
}

// The training forward pass must compute what inference computes.
func TestForwardMatchesModel(t *testing.T) {
	g := loadFixtureGPT(t, 2, 16)
	cfg := g.Layout.Config
	tokens := make([]uint16, 2*16+1)
	for i := range tokens {
		tokens[i] = uint16((i*7919 + 13) % cfg.VocabSize)
	}
	if _, err := g.Forward(tokens); err != nil {
		t.Fatal(err)
	}
	m := g.Model()
	V := cfg.VocabSize
	for b := range 2 {
		ids := make([]int, 16)
		for i := range ids {
			ids[i] = int(tokens[b*16+i])
		}
		out, err := m.Forward([]model.Step{{Cache: m.NewCache(), Tokens: ids, All: true}})
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range out[0] {
			got := g.acts.logits[b*16*V+i]
			if math.Abs(float64(got-want)) > 1e-5 {
				t.Fatalf("row %d logit %d: training forward %g, model.Forward %g", b, i, got, want)
			}
		}
	}
}

// Training must give bit-identical results whatever the thread count, so
// that a resumed run reproduces an uninterrupted one.
func TestDeterministicAcrossThreads(t *testing.T) {
	defer kernels.SetThreads(0)
	run := func(threads int) []float32 {
		kernels.SetThreads(threads)
		g := loadFixtureGPT(t, 2, 8)
		tokens := make([]uint16, 17)
		for i := range tokens {
			tokens[i] = uint16(i * 3001 % 50257)
		}
		opt := NewAdamW(g.Layout.Size, 0.9, 0.95, 1e-8, 0.1)
		for range 2 {
			if _, err := g.Forward(tokens); err != nil {
				t.Fatal(err)
			}
			g.ZeroGrad()
			g.Backward(1)
			opt.Update(g.Layout, g.Params, g.Grads, 1e-3, 1)
		}
		return append(slices.Clone(g.Params), g.Grads...)
	}
	want := run(1)
	for _, th := range []int{2, 3} {
		if got := run(th); !slices.Equal(got, want) {
			t.Fatalf("%d threads give different parameters than 1 thread", th)
		}
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{LR: 1e-3, MinLR: 1e-4, Warmup: 10, Steps: 110}
	for _, c := range []struct {
		k    int
		want float64
	}{
		{0, 1e-4}, {4, 5e-4}, {9, 1e-3}, {10, 1e-3}, {60, 1e-4 + 0.5*9e-4}, {110, 1e-4}, {200, 1e-4},
	} {
		if got := s.At(c.k); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("At(%d) = %g, want %g", c.k, got, c.want)
		}
	}
	constant := Schedule{LR: 3e-4, MinLR: 3e-4, Steps: 50}
	for k := range 60 {
		if got := constant.At(k); got != 3e-4 {
			t.Fatalf("constant schedule At(%d) = %g", k, got)
		}
	}
}

func TestClip(t *testing.T) {
	g := []float32{3, 4}
	n := GradNorm(g)
	if n != 5 {
		t.Fatalf("norm %g, want 5", n)
	}
	for _, c := range []struct {
		max  float64
		want float32
	}{{0, 1}, {10, 1}, {5, 1}, {1, 0.2}} {
		if got := ClipScale(n, c.max); got != c.want {
			t.Errorf("ClipScale(5, %g) = %g, want %g", c.max, got, c.want)
		}
	}
	// Update applies the factor to the gradients: one step of Adam moves
	// each parameter by about lr whatever the scale, but the moments
	// record the scaled gradient.
	l, err := NewLayout(model.Config{NLayer: 1, NHead: 1, NEmbd: 1, NCtx: 1, VocabSize: 1, LayerNormEps: 1e-5})
	if err != nil {
		t.Fatal(err)
	}
	p, grads := make([]float32, l.Size), make([]float32, l.Size)
	for i := range grads {
		grads[i] = 2
	}
	opt := NewAdamW(l.Size, 0.9, 0.95, 1e-8, 0)
	opt.Update(l, p, grads, 0.1, 0.5)
	for i := range p {
		if math.Abs(float64(opt.M[i])-0.1) > 1e-7 || math.Abs(float64(p[i])+0.1) > 1e-6 {
			t.Fatalf("after a clipped step: m %g, p %g", opt.M[i], p[i])
		}
	}
}

func TestInit(t *testing.T) {
	cfg := model.Config{NLayer: 4, NHead: 2, NEmbd: 32, NCtx: 16, VocabSize: 1000, LayerNormEps: 1e-5}
	l, err := NewLayout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if l.Size != cfg.NumParams() {
		t.Fatalf("layout has %d parameters, config counts %d", l.Size, cfg.NumParams())
	}
	a, b := make([]float32, l.Size), make([]float32, l.Size)
	Init(l, a, 7)
	Init(l, b, 7)
	if !slices.Equal(a, b) {
		t.Fatal("Init with the same seed differs")
	}
	for i, ts := range l.Tensors {
		s := l.Slice(a, i)
		var sum, sq float64
		for _, v := range s {
			sum += float64(v)
			sq += float64(v) * float64(v)
		}
		n := float64(len(s))
		std := math.Sqrt(sq/n - (sum/n)*(sum/n))
		switch {
		case ts.Name == "h.1.mlp.c_proj.weight" || ts.Name == "h.0.attn.c_proj.weight":
			if want := 0.02 / math.Sqrt(8); math.Abs(std-want) > 0.1*want {
				t.Errorf("%s std %g, want %g", ts.Name, std, want)
			}
		case ts.Name == "wte.weight" || ts.Name == "h.2.mlp.c_fc.weight":
			if math.Abs(std-0.02) > 0.002 {
				t.Errorf("%s std %g, want 0.02", ts.Name, std)
			}
		case ts.Name == "ln_f.weight" || ts.Name == "h.3.ln_2.weight":
			if sum != n || std != 0 {
				t.Errorf("%s not all ones", ts.Name)
			}
		case ts.Name == "h.0.attn.c_attn.bias" || ts.Name == "ln_f.bias":
			if sq != 0 {
				t.Errorf("%s not zero", ts.Name)
			}
		}
	}
}

// The same kind of run fed from the llm.c token file by the data loader,
// as gpt2 train does: every step reads the file's single batch.
func TestTrainStreamExpected(t *testing.T) {
	withKernels(t, func(t *testing.T) {
		e := loadTrainExpected(t, "train_stream_expected.json")
		B, T := e.Batch.B, e.Batch.T
		g := loadFixtureGPT(t, B, T)
		loader, err := data.Open([]string{filepath.Join(fixture.HFDir(t), "train.bin")}, B, T, data.Options{Vocab: 50257})
		if err != nil {
			t.Fatal(err)
		}
		defer loader.Close()
		steps := 0
		forward := func() float64 {
			if p := loader.Position(); steps < len(e.BatchPositions) && steps > 0 && p.Offset != int64(e.BatchPositions[steps-1]+B*T) {
				t.Fatalf("step %d: loader at %+v", steps, p)
			}
			steps++
			loss, err := g.Forward(loader.Next())
			if err != nil {
				t.Fatal(err)
			}
			return loss
		}
		checkTrainRun(t, e, g, forward)
	})
}

// Accumulating K micro-batches with scale 1/K gives the gradient of the
// mean loss over all of them: B=1 twice equals B=2 once.
func TestGradAccumulation(t *testing.T) {
	rows := [][]int{{5, 9, 11, 300, 7, 50256, 2, 4, 99}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}
	big := loadFixtureGPT(t, 2, 8)
	var in, tg []int
	for _, r := range rows {
		in, tg = append(in, r[:8]...), append(tg, r[1:]...)
	}
	lossBig, err := big.ForwardRows(in, tg)
	if err != nil {
		t.Fatal(err)
	}
	big.ZeroGrad()
	big.Backward(1)

	small := loadFixtureGPT(t, 1, 8)
	small.ZeroGrad()
	var lossSum float64
	for _, r := range rows {
		l, err := small.ForwardRows(r[:8], r[1:])
		if err != nil {
			t.Fatal(err)
		}
		lossSum += l
		small.Backward(0.5)
	}
	if math.Abs(lossSum/2-lossBig) > 1e-6*lossBig {
		t.Fatalf("mean of micro-batch losses %g, batch loss %g", lossSum/2, lossBig)
	}
	scale := math.Sqrt(SumSquares(big.Grads))
	for i := range big.Grads {
		if d := math.Abs(float64(big.Grads[i] - small.Grads[i])); d > 1e-6*scale {
			t.Fatalf("grad %d: accumulated %g, batch %g", i, small.Grads[i], big.Grads[i])
		}
	}
}
