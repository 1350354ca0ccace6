// Package eval measures a GPT-2 model zero-shot on the benchmarks of the
// GPT-2 paper (Radford et al., 2019, "Language Models are Unsupervised
// Multitask Learners", Table 3): language modelling (WikiText-2,
// WikiText-103, Penn Treebank, One Billion Word, enwik8, text8), LAMBADA,
// the Children's Book Test and the Winograd Schema Challenge.
//
// All scoring goes through one primitive: the log-probability of one or
// more continuations given a context, computed by feeding the context once
// and branching the key/value cache for each continuation. Sequences run in
// batch slots, each with its own cache allocated once and reset between
// sequences, and the slots advance together through [LM.Forward].
//
// # Language modelling
//
// The text (after the task's detokenizer; see package detok) is tokenized
// as one stream x = [<|endoftext|>] + ids, L = len(ids), so that every text
// token x[1..L] is scored, the first one given only the start-of-document
// token. With window W and stride S (0 < S <= W <= n_ctx), window k feeds
// x[kS : e_k] with e_k = min(kS+W, L) and predicts x[kS+1 : e_k+1]; it
// scores only the targets with index above e_(k-1) (all of them for k = 0),
// and the first window with e_k = L is the last. Every target is scored
// exactly once, with at least W-S tokens of left context once it is past the
// first window. The defaults are W = n_ctx and S = n_ctx/2.
//
// Reported: nll, the total negative log-likelihood in nats (summed in
// float64); tokens (L); token_ppl = exp(nll/tokens); words, the number of
// whitespace-separated words of the original file's text, and word_ppl =
// exp(nll/words); bytes, the UTF-8 length of the original text, and
// bits_per_byte = nll / (bytes ln 2) (bits per character for text8, which
// is ASCII). "Original" means the test text as read from the file, before
// detokenizing. For WikiText, PTB and 1BW also benchmark_tokens, the
// benchmark's own token count (its whitespace-separated tokens plus one
// <eos> per line: 245,569 for the WikiText test sets, 82,430 for PTB's),
// and benchmark_ppl = exp(nll/benchmark_tokens), the paper's normalisation.
//
// # LAMBADA
//
// The target is the text after the last space of the (detokenized) passage,
// scored with its leading space; the context is the text before that space.
// accuracy: every target token is the argmax of the model's distribution
// given the true prefix. accuracy_last_token: only the last target token
// needs to be. ppl = exp(-mean over examples of the target's summed
// log-probability). accuracy_stopword_filter: see [StopWords] for the
// procedure. Argmax ties go to the lowest token id.
//
// # CBT and Winograd
//
// CBT: each of the 10 candidates replaces XXXXX, and the candidate with the
// rest of the question is scored given the 20 context sentences and the
// question up to XXXXX; the example is right if the answer has the highest
// log-probability. WSC: partial scoring compares log p(" " + continuation |
// option) across the options, full scoring the log-probability of the whole
// sentence "option continuation" from <|endoftext|>. Where a context and
// continuation do not fit in n_ctx, the context keeps its last tokens.
package eval

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// LM is what the evaluator needs of a model. *model.Model implements it.
type LM interface {
	// Forward appends each step's tokens to its cache and returns logits,
	// as documented at model.Model.Forward.
	Forward(steps []model.Step) ([][]float32, error)
	// NewCache allocates a key/value cache for one sequence of up to the
	// model's context length.
	NewCache() *model.Cache
}

// Tokenizer is what the evaluator needs of a tokenizer.
// *tokenizer.Tokenizer implements it.
type Tokenizer interface {
	Encode(text string) []int
	TokenBytes(id int) ([]byte, error)
}

// Progress reports how far a task has got.
type Progress struct {
	Task    string
	Done    int    // units done
	Total   int    // units in all
	Unit    string // "tokens" or "examples"
	Fed     int64  // tokens fed to the model so far, for throughput
	Elapsed time.Duration
}

// Evaluator runs tasks on one model. It is not safe for concurrent use.
type Evaluator struct {
	LM        LM
	Tokenizer Tokenizer
	NCtx      int // the model's context length
	VocabSize int // the number of logits per position
	BOS       int // the start-of-document token (<|endoftext|>)

	// Batch is the number of sequences fed to the model together, each
	// with its own cache (allocated once, on first use). Default 8.
	Batch int
	// Chunk caps the tokens a sequence feeds per forward pass, which bounds
	// the memory for logits at Batch*Chunk*VocabSize floats. Default 128.
	Chunk int

	// Progress, if set, is called after every forward pass.
	Progress func(Progress)
	// Warn, if set, receives problems that do not stop a task, such as a
	// malformed record (which is skipped and counted).
	Warn func(error)

	caches []*model.Cache
	words  *wordClasses
}

// New returns an evaluator for a model and its tokenizer with the default
// batch and chunk sizes.
func New(m *model.Model, tok Tokenizer) *Evaluator {
	return &Evaluator{
		LM:        m,
		Tokenizer: tok,
		NCtx:      m.Config.NCtx,
		VocabSize: m.Config.VocabSize,
		BOS:       tokenizer.EndOfText,
	}
}

func (e *Evaluator) warn(err error) {
	if e.Warn != nil {
		e.Warn(err)
	}
}

func (e *Evaluator) check() error {
	switch {
	case e.LM == nil || e.Tokenizer == nil:
		return errors.New("eval: evaluator needs a model and a tokenizer")
	case e.NCtx < 1 || e.VocabSize < 1:
		return fmt.Errorf("eval: bad model shape (n_ctx %d, vocab %d)", e.NCtx, e.VocabSize)
	case e.BOS < 0 || e.BOS >= e.VocabSize:
		return fmt.Errorf("eval: start token %d outside the vocabulary (%d)", e.BOS, e.VocabSize)
	case e.Batch < 0 || e.Chunk < 0:
		return fmt.Errorf("eval: batch %d and chunk %d must not be negative", e.Batch, e.Chunk)
	}
	return nil
}

// slots returns the cache pool, allocating it on first use.
func (e *Evaluator) slots() []*model.Cache {
	n := e.Batch
	if n == 0 {
		n = 8
	}
	if len(e.caches) != n {
		e.caches = make([]*model.Cache, n)
		for i := range e.caches {
			e.caches[i] = e.LM.NewCache()
		}
	}
	return e.caches
}

func (e *Evaluator) chunk() int {
	if e.Chunk == 0 {
		return 128
	}
	return e.Chunk
}

// tracker turns job completions into Progress reports.
type tracker struct {
	e     *Evaluator
	p     Progress
	start time.Time
}

func (e *Evaluator) track(task, unit string, total int) *tracker {
	return &tracker{e: e, p: Progress{Task: task, Unit: unit, Total: total}, start: time.Now()}
}

func (t *tracker) fed(n int) {
	t.p.Fed += int64(n)
	if t.e.Progress != nil {
		t.p.Elapsed = time.Since(t.start)
		t.e.Progress(t.p)
	}
}

func (t *tracker) done(n int) { t.p.Done += n }

// readExamples opens the file at path and reads task's examples from it
// with read, reporting each malformed line through warn. It returns the
// examples and how many lines were skipped as malformed.
func readExamples[E any](e *Evaluator, task, path string, read func(io.Reader) ([]E, []error, error)) ([]E, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", task, err)
	}
	defer f.Close()
	exs, bad, err := read(f)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", task, err)
	}
	for _, b := range bad {
		e.warn(b)
	}
	return exs, len(bad), nil
}
