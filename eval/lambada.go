package eval

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gpt2go/gpt2/eval/detok"
	"github.com/gpt2go/gpt2/model"
)

// StopWords are the words the stop-word filter rejects as LAMBADA
// predictions: NLTK's classic English stop-word list (127 words), compared
// in lower case.
//
// The GPT-2 paper reports LAMBADA accuracy with "a stop-word filter" on the
// model's predicted word (its 1.5B figure, 63.24%, uses it), without saying
// more. The procedure here, accuracy_stopword_filter, is:
//
//  1. Rank the tokens of the distribution after the context by logit and
//     keep the first 32 that start a word: a space followed by a letter or
//     digit (the target is " " + word).
//  2. Take them in turn. Feed the candidate after the context and extend it
//     greedily, one argmax token at a time, while the argmax token continues
//     the word (starts with a letter or digit, no space or punctuation), up
//     to 8 tokens in all. The word is the text of those tokens less the
//     leading space.
//  3. The first word that is not a stop word is the prediction; if all 32
//     are stop words, there is none. The example is right if the prediction
//     equals the target word exactly.
var StopWords = strings.Fields(`
	a about above after again against all am an and any are as at
	be because been before being below between both but by can did do does
	doing don down during each few for from further had has have having he
	her here hers herself him himself his how i if in into is it its itself
	just me more most my myself no nor not now of off on once only or other
	our ours ourselves out over own same she should so some such t than that
	the their theirs them themselves then there these they this those through
	to too under until up very was we were what when where which while who
	whom why will with you your yours yourself yourselves s`)

const (
	stopCandidates = 32 // first tokens tried by the stop-word filter
	maxWordTokens  = 8  // tokens a predicted word may span
)

var stopSet = func() map[string]bool {
	m := make(map[string]bool, len(StopWords))
	for _, w := range StopWords {
		m[w] = true
	}
	return m
}()

// wordClasses says, for each token id, whether it starts a word (" " then a
// letter or digit) and whether it continues one (a letter or digit first).
type wordClasses struct {
	start, cont []bool
}

func (e *Evaluator) wordClasses() *wordClasses {
	if e.words != nil {
		return e.words
	}
	wc := &wordClasses{start: make([]bool, e.VocabSize), cont: make([]bool, e.VocabSize)}
	alnum := func(b []byte) bool {
		r, _ := utf8.DecodeRune(b)
		return len(b) > 0 && (unicode.IsLetter(r) || unicode.IsDigit(r))
	}
	for id := range e.VocabSize {
		b, err := e.Tokenizer.TokenBytes(id)
		if err != nil {
			continue
		}
		wc.cont[id] = alnum(b)
		wc.start[id] = len(b) > 1 && b[0] == ' ' && alnum(b[1:])
	}
	e.words = wc
	return wc
}

// LambadaExample is one LAMBADA passage split into context and target word.
type LambadaExample struct {
	Context string // text before the last space
	Word    string // the target word, scored as " " + Word
}

// SplitLambada splits a passage at its last space.
func SplitLambada(text string) (LambadaExample, error) {
	i := strings.LastIndexByte(text, ' ')
	if i < 0 || i == len(text)-1 {
		return LambadaExample{}, errors.New("no word after the last space")
	}
	return LambadaExample{Context: text[:i], Word: text[i+1:]}, nil
}

// ReadLambada reads LAMBADA passages, one JSON object with a "text" field
// per line, split into context and target after the detokenizer (unless
// raw). Malformed lines are returned as errors naming path and line, and
// skipped; reading stops after limit examples if limit > 0.
func ReadLambada(r io.Reader, path string, raw bool, limit int) ([]LambadaExample, []error, error) {
	var exs []LambadaExample
	var bad []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan() && (limit <= 0 || len(exs) < limit); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: %w", path, line, err))
			continue
		}
		if rec.Text == nil {
			bad = append(bad, fmt.Errorf("%s:%d: no \"text\" field", path, line))
			continue
		}
		text := *rec.Text
		if !raw {
			text = detok.Lambada(text)
		}
		ex, err := SplitLambada(text)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: %w", path, line, err))
			continue
		}
		exs = append(exs, ex)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return exs, bad, nil
}

// LambadaResult is the outcome of the LAMBADA task. Accuracies are
// fractions.
type LambadaResult struct {
	Task                   string  `json:"task"`
	N                      int     `json:"n"`
	Accuracy               float64 `json:"accuracy"`
	PPL                    float64 `json:"ppl"`
	AccuracyLastToken      float64 `json:"accuracy_last_token"`
	AccuracyStopwordFilter float64 `json:"accuracy_stopword_filter"`
	Skipped                int     `json:"skipped"`
}

// TaskName returns the task's name.
func (r *LambadaResult) TaskName() string { return r.Task }

// lambadaJob scores the target word, then runs the stop-word filter.
type lambadaJob struct {
	*choiceJob
	word string
	wc   *wordClasses
	tok  Tokenizer

	filtering bool  // past the scoring, in the stop-word filter
	cands     []int // first tokens to try, best first
	ci        int   // candidate being extended
	gen       []int // its tokens so far
	feed      []int // token to feed next, if any
	predicted string
	found     bool
}

func (j *lambadaJob) next(c *model.Cache, max int) ([]int, bool, bool) {
	if !j.filtering {
		if toks, all, ok := j.choiceJob.next(c, max); ok {
			return toks, all, ok
		}
		j.filtering = true
	}
	if j.feed == nil {
		if j.found || j.ci == len(j.cands) {
			return nil, false, false
		}
		c.Truncate(len(j.ctx)) // back to the context alone
		j.gen = append(j.gen[:0], j.cands[j.ci])
		j.feed = j.gen
	}
	f := j.feed
	j.feed = nil
	return f, false, true
}

func (j *lambadaJob) take(logits []float32) {
	if !j.filtering {
		j.choiceJob.take(logits)
		return
	}
	// logits is the distribution after the candidate word so far.
	if t := argmax(logits); j.wc.cont[t] && len(j.gen) < maxWordTokens {
		j.gen = append(j.gen, t)
		j.feed = j.gen[len(j.gen)-1:]
		return
	}
	var b []byte
	for _, id := range j.gen {
		tb, _ := j.tok.TokenBytes(id)
		b = append(b, tb...)
	}
	word := strings.TrimPrefix(string(b), " ")
	if stopSet[strings.ToLower(word)] {
		j.ci++
		return
	}
	j.predicted, j.found = word, true
}

// topStarts returns up to n word-starting token ids of row, by decreasing
// logit (ties to the lower id).
func topStarts(row []float32, start []bool, n int) []int {
	top := make([]int, 0, n+1)
	for id, v := range row {
		if !start[id] || len(top) == n && v <= row[top[n-1]] {
			continue
		}
		i := len(top)
		for i > 0 && row[top[i-1]] < v {
			i--
		}
		top = append(top, 0)
		copy(top[i+1:], top[i:])
		top[i] = id
		if len(top) > n {
			top = top[:n]
		}
	}
	return top
}

// Lambada evaluates LAMBADA examples.
func (e *Evaluator) Lambada(ctx context.Context, exs []LambadaExample) (*LambadaResult, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	const task = "lambada"
	wc := e.wordClasses()
	res := &LambadaResult{Task: task}
	tr := e.track(task, "examples", len(exs))
	i := 0
	var sumLogp float64
	var right, rightLast, rightStop int
	next := func() (job, bool) {
		for i < len(exs) {
			ex := exs[i]
			i++
			ctxIDs := e.Tokenizer.Encode(ex.Context)
			target := e.Tokenizer.Encode(" " + ex.Word)
			// Room for the target and for the filter's longest word.
			cc, ok := fitContext(ctxIDs, max(len(target), maxWordTokens+1), e.NCtx)
			if !ok {
				e.warn(fmt.Errorf("%s: example %d: empty context, or target longer than n_ctx; skipped", task, i))
				res.Skipped++
				tr.done(1)
				continue
			}
			j := &lambadaJob{choiceJob: newChoice(cc, [][]int{target}, e.VocabSize), word: ex.Word, wc: wc, tok: e.Tokenizer}
			j.first = func(row []float32) { j.cands = topStarts(row, wc.start, stopCandidates) }
			return j, true
		}
		return nil, false
	}
	finish := func(jb job) {
		j := jb.(*lambadaJob)
		s := j.scores[0]
		res.N++
		sumLogp += s.logp
		if s.greedy {
			right++
		}
		if s.lastGreedy {
			rightLast++
		}
		if j.found && j.predicted == j.word {
			rightStop++
		}
		tr.done(1)
	}
	if err := e.run(ctx, tr, next, finish); err != nil {
		return nil, fmt.Errorf("%s: %w", task, err)
	}
	if res.N > 0 {
		n := float64(res.N)
		res.Accuracy = float64(right) / n
		res.AccuracyLastToken = float64(rightLast) / n
		res.AccuracyStopwordFilter = float64(rightStop) / n
		if math.IsNaN(sumLogp) {
			return nil, fmt.Errorf("%s: the model's log-probabilities are NaN", task)
		}
		res.PPL = math.Min(math.Exp(-sumLogp/n), math.MaxFloat64)
	}
	return res, nil
}

// runLambada reads and evaluates the LAMBADA file at path.
func (e *Evaluator) runLambada(ctx context.Context, path string, o Options) (*LambadaResult, error) {
	exs, bad, err := readExamples(e, "lambada", path, func(r io.Reader) ([]LambadaExample, []error, error) {
		return ReadLambada(r, path, o.Raw, o.Limit)
	})
	if err != nil {
		return nil, err
	}
	res, err := e.Lambada(ctx, exs)
	if err != nil {
		return nil, err
	}
	res.Skipped += bad
	return res, nil
}
