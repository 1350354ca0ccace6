package sample

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// softmaxAt returns the probabilities of logits/temp.
func softmaxAt(logits []float32, temp float64) []float64 {
	z := make([]float32, len(logits))
	for i, v := range logits {
		z[i] = float32(float64(v) / temp)
	}
	lp := LogSoftmax(z)
	p := make([]float64, len(lp))
	for i, v := range lp {
		p[i] = math.Exp(v)
	}
	return p
}

// chiSquare is Pearson's statistic for counts against probabilities p
// (cells with p = 0 must have no counts: that returns +Inf).
func chiSquare(counts []int, p []float64, n int) float64 {
	var x float64
	for i, c := range counts {
		e := p[i] * float64(n)
		if e == 0 {
			if c != 0 {
				return math.Inf(1)
			}
			continue
		}
		d := float64(c) - e
		x += d * d / e
	}
	return x
}

func draws(t *testing.T, p Params, logits []float32, n int) []int {
	t.Helper()
	s, err := NewSampler(p, len(logits))
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, len(logits))
	for range n {
		counts[s.Sample(logits)]++
	}
	return counts
}

// The chi-square critical value for 4 degrees of freedom at p = 0.001 is
// 18.47; with a fixed seed the statistic is deterministic, so this is a
// check of the distribution, not a flaky test.
const chi2Crit4 = 18.47

func TestTemperatureDistribution(t *testing.T) {
	logits := []float32{0, 1, 2, 3, -1}
	const n = 20000
	for _, temp := range []float64{0.5, 1, 2} {
		counts := draws(t, Params{Temperature: temp, Seed: 1}, logits, n)
		if x := chiSquare(counts, softmaxAt(logits, temp), n); x > chi2Crit4 {
			t.Errorf("temperature %g: counts %v, chi-square %.1f against softmax(logits/T) > %.2f", temp, counts, x, chi2Crit4)
		}
		if temp != 1 {
			// The test can tell temperatures apart.
			if x := chiSquare(counts, softmaxAt(logits, 1), n); x < 100 {
				t.Errorf("temperature %g: counts %v fit temperature 1 too (chi-square %.1f)", temp, counts, x)
			}
		}
	}
}

func TestTopKTopPDistribution(t *testing.T) {
	const n = 20000
	logits := []float32{0, 1, 2, 3, -1}
	// Top-k 2 keeps tokens 3 and 2, renormalised.
	counts := draws(t, Params{Temperature: 1, TopK: 2, Seed: 2}, logits, n)
	p := softmaxAt([]float32{float32(math.Inf(-1)), float32(math.Inf(-1)), 2, 3, float32(math.Inf(-1))}, 1)
	if x := chiSquare(counts, p, n); x > chi2Crit4 {
		t.Errorf("top-k 2: counts %v, chi-square %.1f", counts, x)
	}

	// Probabilities 0.5, 0.3, 0.15, 0.05: top-p 0.75 keeps the first two,
	// 0.85 the first three.
	probs := []float64{0.5, 0.3, 0.15, 0.05}
	lg := make([]float32, len(probs))
	for i, q := range probs {
		lg[i] = float32(math.Log(q))
	}
	for _, c := range []struct {
		topP float64
		keep int
	}{{0.75, 2}, {0.85, 3}, {0.4, 1}} {
		counts := draws(t, Params{Temperature: 1, TopP: c.topP, Seed: 3}, lg, n)
		want := make([]float64, len(probs))
		var sum float64
		for i := range c.keep {
			sum += probs[i]
		}
		for i := range c.keep {
			want[i] = probs[i] / sum
		}
		if x := chiSquare(counts, want, n); x > chi2Crit4 {
			t.Errorf("top-p %g: counts %v, want proportions %v (chi-square %.1f)", c.topP, counts, want, x)
		}
	}
}

func TestGreedyLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	logits := make([]float32, 1000)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64())
	}
	want := argmaxF32(logits)
	for _, p := range []Params{
		{},
		{Temperature: 1, TopK: 1, Seed: 9},
		{Temperature: 5, TopP: 1e-9, Seed: 9},
		{Temperature: 0.7, TopK: 1, TopP: 0.5, Seed: 9},
	} {
		s, err := NewSampler(p, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		for range 50 {
			if got := s.Sample(logits); got != want {
				t.Fatalf("%+v: sampled %d, want the argmax %d", p, got, want)
			}
		}
	}
}

func argmaxF32(z []float32) int {
	best := 0
	for i, v := range z {
		if v > z[best] {
			best = i
		}
	}
	return best
}

func TestSampleDeterministicAndPure(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 5000)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 3)
	}
	orig := slices.Clone(logits)
	p := Params{Temperature: 0.9, TopK: 200, TopP: 0.9, RepetitionPenalty: 1.3, PresencePenalty: 0.2, FrequencyPenalty: 0.1, LogitBias: map[int]float32{7: 5}, Seed: 42}
	run := func() []int {
		s, err := NewSampler(p, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		s.ObserveContext(1, 2, 3)
		var out []int
		for range 200 {
			id := s.Sample(logits)
			s.Observe(id)
			out = append(out, id)
		}
		return out
	}
	a, b := run(), run()
	if !slices.Equal(a, b) {
		t.Fatalf("same seed, different tokens:\n%v\n%v", a, b)
	}
	if !slices.Equal(logits, orig) {
		t.Fatal("Sample modified the caller's logits")
	}
	p.Seed++
	if c := run(); slices.Equal(a, c) {
		t.Fatal("a different seed gave the same 200 tokens")
	}
}

func TestPenaltiesAndBiasExact(t *testing.T) {
	logits := []float32{2, -1, 0.5, 3, -2}
	newS := func(p Params) *Sampler {
		s, err := NewSampler(p, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	check := func(name string, got, want []float32) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s: adjusted logits %v, want %v", name, got, want)
		}
	}

	s := newS(Params{RepetitionPenalty: 2})
	s.ObserveContext(0, 1, 0)
	check("repetition", s.adjust(logits), []float32{1, -2, 0.5, 3, -2})

	s = newS(Params{PresencePenalty: 0.5, FrequencyPenalty: 0.25})
	s.ObserveContext(0) // the prompt does not count
	s.Observe(2)
	s.Observe(2)
	s.Observe(3)
	check("presence+frequency", s.adjust(logits), []float32{2, -1, 0.5 - 0.5 - 0.5, 3 - 0.5 - 0.25, -2})

	s = newS(Params{LogitBias: map[int]float32{4: 10, 3: -100}})
	check("bias", s.adjust(logits), []float32{2, -1, 0.5, -97, 8})

	// Everything at once, in order: bias, repetition, presence/frequency.
	s = newS(Params{LogitBias: map[int]float32{1: 3}, RepetitionPenalty: 4, PresencePenalty: 1})
	s.Observe(1) // -1+3 = 2 → 2/4 = 0.5 → 0.5-1 = -0.5
	check("combined", s.adjust(logits), []float32{2, -0.5, 0.5, 3, -2})

	// The outcome of greedy decoding follows.
	for _, c := range []struct {
		name    string
		p       Params
		context []int
		gen     []int
		want    int
	}{
		{"plain", Params{}, nil, nil, 3},
		{"bias", Params{LogitBias: map[int]float32{4: 10}}, nil, nil, 4},
		{"ban", Params{LogitBias: map[int]float32{3: -100}}, nil, nil, 0},
		{"repetition", Params{RepetitionPenalty: 2}, []int{3}, nil, 0},                                             // 3/2 = 1.5 < 2
		{"repetition-negative", Params{RepetitionPenalty: 0.5}, []int{1}, nil, 3},                                  // -1*0.5 = -0.5: still below 3
		{"presence ignores prompt", Params{PresencePenalty: 5}, []int{3}, nil, 3},                                  // prompt tokens are not penalised
		{"presence", Params{PresencePenalty: 1.5}, nil, []int{3}, 0},                                               // 3-1.5 = 1.5 < 2
		{"frequency", Params{FrequencyPenalty: 0.6}, nil, []int{3, 3}, 0},                                          // 3-1.2 = 1.8 < 2
		{"frequency once", Params{FrequencyPenalty: 0.6}, nil, []int{3}, 3},                                        // 3-0.6 = 2.4 > 2
		{"negative presence", Params{PresencePenalty: -2}, nil, []int{2}, 3},                                       // 0.5+2 = 2.5 < 3
		{"negative presence wins", Params{PresencePenalty: -3}, nil, []int{2}, 2},                                  // 0.5+3 = 3.5 > 3
		{"bias then repetition", Params{LogitBias: map[int]float32{0: 2}, RepetitionPenalty: 2}, []int{0}, nil, 3}, // (2+2)/2 = 2 < 3
	} {
		s := newS(c.p)
		s.ObserveContext(c.context...)
		for _, id := range c.gen {
			s.Observe(id)
		}
		if got := s.Sample(logits); got != c.want {
			t.Errorf("%s: greedy picked %d, want %d", c.name, got, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	const vocab = 100
	good := []Params{{}, {Temperature: 1, TopK: 5, TopP: 1, RepetitionPenalty: 1}, {TopP: 0.001}, {LogitBias: map[int]float32{0: -100, 99: 100}}}
	for _, p := range good {
		if err := p.Validate(vocab); err != nil {
			t.Errorf("%+v: %v", p, err)
		}
	}
	for _, c := range []struct {
		p    Params
		want string
	}{
		{Params{Temperature: -0.1}, "temperature"},
		{Params{Temperature: math.NaN()}, "temperature"},
		{Params{Temperature: math.Inf(1)}, "temperature"},
		{Params{TopK: -1}, "top_k"},
		{Params{TopP: 1.5}, "top_p"},
		{Params{TopP: -0.1}, "top_p"},
		{Params{TopP: math.NaN()}, "top_p"},
		{Params{RepetitionPenalty: -1}, "repetition"},
		{Params{PresencePenalty: math.Inf(-1)}, "presence"},
		{Params{FrequencyPenalty: math.NaN()}, "frequency"},
		{Params{LogitBias: map[int]float32{100: 1}}, "token 100"},
		{Params{LogitBias: map[int]float32{-1: 1}}, "token -1"},
		{Params{LogitBias: map[int]float32{5: float32(math.Inf(1))}}, "finite"},
	} {
		err := c.p.Validate(vocab)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.p, err, c.want)
		}
		if _, err := NewSampler(c.p, vocab); err == nil {
			t.Errorf("NewSampler(%+v) accepted it", c.p)
		}
	}
}

func TestSelection(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for trial := range 300 {
		n := 1 + rng.IntN(60)
		sorted := make([]cand, n)
		for i := range sorted {
			sorted[i] = cand{w: float64(rng.IntN(6)), id: i} // many ties
		}
		slices.SortFunc(sorted, rank)

		k := 1 + rng.IntN(n)
		c := slices.Clone(sorted)
		rng.Shuffle(n, func(i, j int) { c[i], c[j] = c[j], c[i] })
		selectTop(c, k)
		got := slices.Clone(c[:k])
		slices.SortFunc(got, rank)
		if !slices.Equal(got, sorted[:k]) {
			t.Fatalf("trial %d: selectTop(%d) = %v, want %v", trial, k, got, sorted[:k])
		}

		var total float64
		for _, x := range sorted {
			total += x.w
		}
		target := rng.Float64() * total
		want := 0
		for acc := 0.0; want < n; {
			acc += sorted[want].w
			want++
			if acc >= target {
				break
			}
		}
		rng.Shuffle(n, func(i, j int) { c[i], c[j] = c[j], c[i] })
		m := selectNucleus(c, target)
		got = slices.Clone(c[:m])
		slices.SortFunc(got, rank)
		if !slices.Equal(got, sorted[:want]) {
			t.Fatalf("trial %d: nucleus(%g of %g) = %v, want %v", trial, target, total, got, sorted[:want])
		}
	}
}

// TestTopCands checks the one-pass selection against a sort, on inputs
// large enough to go through its compactions, in every order (ascending
// input makes every value pass the threshold), with ties, NaN and -Inf.
func TestTopCands(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	nan, ninf := float32(math.NaN()), float32(math.Inf(-1))
	for trial := range 60 {
		n := 1 + rng.IntN(5000)
		z := make([]float32, n)
		for i := range z {
			switch r := rng.IntN(100); {
			case r < 3:
				z[i] = nan
			case r < 6:
				z[i] = ninf
			case trial%3 == 0:
				z[i] = float32(rng.IntN(20)) // many ties
			case trial%3 == 1:
				z[i] = float32(i) // ascending
			default:
				z[i] = float32(rng.NormFloat64())
			}
		}
		var all []cand
		for i, v := range z {
			if v == v && v != ninf {
				all = append(all, cand{float64(v), i})
			}
		}
		slices.SortFunc(all, rank)
		for _, k := range []int{1, 2, 40, 300, n} {
			got := topCands(nil, z, k)
			slices.SortFunc(got, rank)
			want := all[:min(k, len(all))]
			if !slices.Equal(got, want) {
				t.Fatalf("trial %d (n %d), k %d: got %d candidates, want %d; first differences: %v vs %v",
					trial, n, k, len(got), len(want), got[:min(5, len(got))], want[:min(5, len(want))])
			}
		}
	}
}

func TestTopKHelper(t *testing.T) {
	lp := []float64{-3, -1, -2, -1, -5}
	got := TopK(lp, 3)
	want := []TokenLogprob{{1, -1}, {3, -1}, {2, -2}}
	if !slices.Equal(got, want) {
		t.Errorf("TopK = %v, want %v", got, want)
	}
	if got := TopK(lp, 10); len(got) != 5 {
		t.Errorf("TopK(10) of 5 gave %d", len(got))
	}
	if got := TopK(lp, 0); got != nil {
		t.Errorf("TopK(0) = %v", got)
	}
	ls := LogSoftmax([]float32{1, 2, 3})
	var s float64
	for _, v := range ls {
		s += math.Exp(v)
	}
	if math.Abs(s-1) > 1e-15 {
		t.Errorf("softmax sums to %v", s)
	}
	// Large logits do not overflow.
	if got := LogSumExp([]float32{1000, 1000}); math.Abs(got-(1000+math.Ln2)) > 1e-12 {
		t.Errorf("LogSumExp(1000, 1000) = %v", got)
	}
}

func BenchmarkSample(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 4))
	logits := make([]float32, 50257)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 2)
	}
	for _, c := range []struct {
		name string
		p    Params
	}{
		{"greedy", Params{}},
		{"temperature", Params{Temperature: 0.8}},
		{"top-k40", Params{Temperature: 0.8, TopK: 40}},
		{"top-p0.95", Params{Temperature: 0.8, TopP: 0.95}},
		{"penalties", Params{Temperature: 0.8, TopP: 0.9, RepetitionPenalty: 1.2, FrequencyPenalty: 0.5}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := NewSampler(c.p, len(logits))
			if err != nil {
				b.Fatal(err)
			}
			for i := range 500 {
				s.Observe(i * 7)
			}
			for b.Loop() {
				s.Sample(logits)
			}
		})
	}
}

func TestSampleEdgeCases(t *testing.T) {
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	for _, c := range []struct {
		name   string
		p      Params
		logits []float32
		want   int
	}{
		{"infinite logit", Params{Temperature: 1}, []float32{0, inf, 1}, 1},
		{"NaN is -Inf", Params{Temperature: 1, TopK: 2}, []float32{nan, 0, nan}, 1},
		{"all NaN", Params{Temperature: 1}, []float32{nan, nan}, 0},
		{"denormal temperature", Params{Temperature: 5e-324}, []float32{0, 2, 1}, 1},
		{"greedy NaN", Params{}, []float32{nan, -1, nan}, 1},
	} {
		s, err := NewSampler(c.p, len(c.logits))
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Sample(c.logits); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
}

// refDistribution is the distribution Sample draws from, computed the
// plain way: the logits adjusted by adjust (in float64), tempered, sorted,
// cut to top-k and top-p, renormalised.
func refDistribution(logits []float32, p Params, adjust func(z []float64)) []float64 {
	z := make([]float64, len(logits))
	for i, v := range logits {
		z[i] = float64(v)
	}
	adjust(z)
	order := make([]int, len(z))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return rank(cand{z[a], a}, cand{z[b], b}) })
	hi := z[order[0]]
	w := make([]float64, len(z))
	var total float64
	for i, v := range z {
		w[i] = math.Exp((v - hi) / p.Temperature)
		total += w[i]
	}
	keep := len(order)
	if p.TopK > 0 {
		keep = min(keep, p.TopK)
		total = 0
		for _, i := range order[:keep] {
			total += w[i]
		}
	}
	if p.TopP > 0 && p.TopP < 1 {
		var acc float64
		for n, i := range order[:keep] {
			if acc += w[i]; acc >= p.TopP*total {
				keep = n + 1
				break
			}
		}
	}
	probs := make([]float64, len(z))
	var sum float64
	for _, i := range order[:keep] {
		sum += w[i]
	}
	for _, i := range order[:keep] {
		probs[i] = w[i] / sum
	}
	return probs
}

// TestLargeVocabDistribution checks the paths taken for a real vocabulary
// (the one-pass top-k with its compactions, the histogram for top-p, the
// whole-vocabulary draw, the penalties on a copy) against refDistribution:
// four likely tokens hidden among 2000 others, whose draws are pooled in
// one cell, so that each case has at most 5 cells. Tokens outside the
// reference's support must never be drawn.
func TestLargeVocabDistribution(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const vocab = 2004
	logits := make([]float32, vocab)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() - 4)
	}
	high := []int{1717, 3, 950, 1999}
	for i, id := range high {
		logits[id] = []float32{8, 7.5, 7, 6}[i]
	}
	none := func([]float64) {}
	const n = 4000
	for _, c := range []struct {
		name   string
		p      Params
		adjust func(z []float64)
		ctx    []int
	}{
		{"all", Params{Temperature: 1}, none, nil},
		{"all-cold", Params{Temperature: 0.5}, none, nil},
		{"top-p 0.85", Params{Temperature: 1, TopP: 0.85}, none, nil},
		{"top-p 0.95 cold", Params{Temperature: 0.7, TopP: 0.95}, none, nil},
		{"top-p into the tail", Params{Temperature: 1, TopP: 0.995}, none, nil},
		{"top-p hot", Params{Temperature: 3, TopP: 0.5}, none, nil},
		{"top-k 600", Params{Temperature: 1.3, TopK: 600}, none, nil},
		{"top-k 600 top-p 0.995", Params{Temperature: 1, TopK: 600, TopP: 0.995}, none, nil},
		{"top-k 3", Params{Temperature: 1, TopK: 3}, none, nil},
		{"penalties", Params{Temperature: 1, TopK: 700, TopP: 0.97, RepetitionPenalty: 1.1, LogitBias: map[int]float32{3: -1, 10: 11}},
			func(z []float64) {
				z[3]--
				z[10] += 11
				for _, id := range []int{1717, 10, 5} {
					if z[id] > 0 {
						z[id] /= 1.1
					} else {
						z[id] *= 1.1
					}
				}
			}, []int{1717, 10, 5}},
	} {
		want := refDistribution(logits, c.p, c.adjust)
		c.p.Seed = 15
		s, err := NewSampler(c.p, vocab)
		if err != nil {
			t.Fatal(err)
		}
		s.ObserveContext(c.ctx...)
		// The cells: the four likely tokens (and token 10, boosted in
		// one case), then all the others.
		cellOf := map[int]int{1717: 0, 3: 1, 950: 2, 1999: 3, 10: 4}
		cells := make([]float64, 6)
		for id, p := range want {
			if cell, ok := cellOf[id]; ok {
				cells[cell] += p
			} else {
				cells[5] += p
			}
		}
		counts := make([]int, 6)
		for range n {
			id := s.Sample(logits)
			if want[id] == 0 {
				t.Fatalf("%s: drew token %d (logit %g), outside the distribution", c.name, id, logits[id])
			}
			if cell, ok := cellOf[id]; ok {
				counts[cell]++
			} else {
				counts[5]++
			}
		}
		// Empty cells do not count as degrees of freedom; at most 5
		// cells are non-empty in each case.
		if x := chiSquare(counts, cells, n); x > chi2Crit4 {
			t.Errorf("%s: counts %v, want proportions %.4f (chi-square %.1f)", c.name, counts, cells, x)
		}
	}
}

// TestSampleAllNeverBanned draws at temperature, with and without top-p,
// from logits of which most are banned (-Inf) or NaN, on both the vector
// and the float64 paths: a banned token's weight is zero exactly, never
// the vector exponential's smallest normal, and a NaN sends the draw to
// the float64 path, where it counts as -Inf.
func TestSampleAllNeverBanned(t *testing.T) {
	ninf, nan := float32(math.Inf(-1)), float32(math.NaN())
	for _, c := range []struct {
		withNaN bool
		topP    float64
	}{{false, 0}, {true, 0}, {false, 0.999}, {true, 0.999}} {
		withNaN := c.withNaN
		logits := make([]float32, 5000)
		for i := range logits {
			logits[i] = ninf
		}
		allowed := map[int]bool{}
		for _, i := range []int{0, 17, 2500, 4999} {
			logits[i] = float32(i % 3)
			allowed[i] = true
		}
		if withNaN {
			logits[1], logits[4998] = nan, nan
		}
		s, err := NewSampler(Params{Temperature: 0.7, TopP: c.topP, Seed: 3}, len(logits))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[int]int{}
		for range 4000 {
			tok := s.Sample(logits)
			if !allowed[tok] {
				t.Fatalf("%+v: drew banned token %d", c, tok)
			}
			seen[tok]++
		}
		if len(seen) != len(allowed) {
			t.Fatalf("%+v: drew %v, want all of %v", c, seen, allowed)
		}
	}
}
