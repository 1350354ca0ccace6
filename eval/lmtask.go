package eval

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/gpt2go/gpt2/eval/detok"
)

// Options are the settings of a task run.
type Options struct {
	// Limit, if positive, evaluates only the first Limit examples (LAMBADA,
	// CBT, WSC) or the first Limit lines of the test text (language
	// modelling; words for text8, which is one line).
	Limit int
	// Window and Stride of language-modelling tasks; zero means n_ctx and
	// n_ctx/2.
	Window, Stride int
	// Raw turns the detokenizers off.
	Raw bool
}

// lmTask describes a language-modelling benchmark.
type lmTask struct {
	detok      func(string) string
	benchmark  bool  // report perplexity per original benchmark token
	tail       int64 // the test set is the file's last tail bytes
	limitWords bool  // Limit counts words, as the file is a single line
}

// testTail is the size of the enwik8 and text8 test sets: the last 5M
// bytes of the 100M-byte files.
const testTail = 5_000_000

var lmTasks = map[string]lmTask{
	"wikitext2":   {detok: detok.WikiText, benchmark: true},
	"wikitext103": {detok: detok.WikiText, benchmark: true},
	"ptb":         {detok: detok.PTB, benchmark: true},
	"1bw":         {detok: detok.OneBW, benchmark: true},
	"enwik8":      {tail: testTail},
	"text8":       {tail: testTail, limitWords: true},
}

// LMResult is the outcome of a language-modelling task.
type LMResult struct {
	Task        string  `json:"task"`
	Tokens      int     `json:"tokens"` // BPE tokens scored
	Words       int     `json:"words"`  // whitespace-separated words of the original text
	Bytes       int     `json:"bytes"`  // UTF-8 bytes of the original text
	NLL         float64 `json:"nll"`    // total, in nats
	TokenPPL    float64 `json:"token_ppl"`
	WordPPL     float64 `json:"word_ppl"`
	BitsPerByte float64 `json:"bits_per_byte"`
	// The benchmark's own token count (words plus one <eos> per line) and
	// the perplexity per such token, as the paper reports it.
	BenchmarkTokens int     `json:"benchmark_tokens,omitempty"`
	BenchmarkPPL    float64 `json:"benchmark_ppl,omitempty"`
	Window          int     `json:"window"`
	Stride          int     `json:"stride"`
	Detokenized     bool    `json:"detokenized"`
}

// TaskName returns the task's name.
func (r *LMResult) TaskName() string { return r.Task }

// readTest reads a language-modelling test text from path: the whole file,
// or its last t.tail bytes.
func (t lmTask) readTest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if t.tail > 0 {
		st, err := f.Stat()
		if err != nil {
			return "", err
		}
		if off := st.Size() - t.tail; off > 0 {
			if _, err := f.Seek(off, io.SeekStart); err != nil {
				return "", fmt.Errorf("read %s: %w", path, err)
			}
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return string(b), nil
}

// limitText keeps the first n lines of s, or its first n words.
func limitText(s string, n int, words bool) string {
	if n <= 0 {
		return s
	}
	if words {
		inWord := false
		for i, r := range s {
			space := r == ' ' || r == '\n' || r == '\t' || r == '\r'
			if !space && !inWord {
				if n == 0 {
					return s[:i]
				}
				n--
			}
			inWord = !space
		}
		return s
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			if n--; n == 0 {
				return s[:i+1]
			}
		}
	}
	return s
}

// countLines counts lines, a last line without a newline included.
func countLines(s string) int {
	n := strings.Count(s, "\n")
	if s != "" && !strings.HasSuffix(s, "\n") {
		n++
	}
	return n
}

// LanguageModel scores text as a language-modelling benchmark. The text is
// the original test text; the task's detokenizer is applied unless raw.
func (e *Evaluator) LanguageModel(ctx context.Context, task, text string, o Options) (*LMResult, error) {
	t, ok := lmTasks[task]
	if !ok {
		return nil, fmt.Errorf("eval: %q is not a language-modelling task", task)
	}
	w, s, err := e.window(o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", task, err)
	}
	scored := text
	if !o.Raw && t.detok != nil {
		scored = t.detok(text)
	}
	ids := e.Tokenizer.Encode(scored)
	nll, err := e.StreamNLL(ctx, task, ids, w, s)
	if err != nil {
		return nil, err
	}
	if math.IsNaN(nll) {
		return nil, fmt.Errorf("%s: the model's log-probabilities are NaN", task)
	}
	r := &LMResult{
		Task:        task,
		Tokens:      len(ids),
		Words:       len(strings.Fields(text)),
		Bytes:       len(text),
		NLL:         nll,
		Window:      w,
		Stride:      s,
		Detokenized: !o.Raw && t.detok != nil,
	}
	r.TokenPPL = perplexity(nll, r.Tokens)
	r.WordPPL = perplexity(nll, r.Words)
	if r.Bytes > 0 {
		r.BitsPerByte = nll / float64(r.Bytes) / math.Ln2
	}
	if t.benchmark {
		r.BenchmarkTokens = r.Words + countLines(text)
		r.BenchmarkPPL = perplexity(nll, r.BenchmarkTokens)
	}
	return r, nil
}

// window returns the window and stride of o, with the defaults filled in,
// or an error if they do not fit the model.
func (e *Evaluator) window(o Options) (w, s int, err error) {
	w, s = o.Window, o.Stride
	if w == 0 {
		w = e.NCtx
	}
	if s == 0 {
		s = max(w/2, 1)
	}
	return w, s, checkWindow(w, s, e.NCtx)
}

// perplexity is exp(nll/n), 0 when n is 0, and capped at the largest
// float64 so that it always encodes as JSON.
func perplexity(nll float64, n int) float64 {
	if n == 0 {
		return 0
	}
	return math.Min(math.Exp(nll/float64(n)), math.MaxFloat64)
}

// runLM reads a language-modelling task's file and scores it.
func (e *Evaluator) runLM(ctx context.Context, task, path string, o Options) (*LMResult, error) {
	t := lmTasks[task]
	if _, _, err := e.window(o); err != nil { // before reading a large file
		return nil, fmt.Errorf("%s: %w", task, err)
	}
	text, err := t.readTest(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", task, err)
	}
	return e.LanguageModel(ctx, task, limitText(text, o.Limit, t.limitWords), o)
}
