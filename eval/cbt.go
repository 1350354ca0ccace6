package eval

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gpt2go/gpt2/eval/detok"
)

// cbtBlank is the placeholder for the missing word in a CBT question.
const cbtBlank = "XXXXX"

// ChoiceResult is the outcome of a multiple-choice task (CBT).
type ChoiceResult struct {
	Task     string  `json:"task"`
	N        int     `json:"n"`
	Accuracy float64 `json:"accuracy"`
	Skipped  int     `json:"skipped"`
}

// TaskName returns the task's name.
func (r *ChoiceResult) TaskName() string { return r.Task }

// ReadCBT reads a Children's Book Test file (cbtest_*_test_2500ex.txt):
// records of 21 numbered lines separated by blank lines, lines 1-20 the
// story, line 21 "21 question\tanswer\t\tcand1|...|cand10" with XXXXX in the
// question. Each record becomes a choice between the 10 candidates, each
// put in place of XXXXX: the continuation is the candidate and the rest of
// the question, the context the story and the question up to XXXXX. The
// text is detokenized (see package detok) unless raw. Malformed records are
// returned as errors naming path and line, and skipped; reading stops after
// limit examples if limit > 0.
func ReadCBT(r io.Reader, path string, raw bool, limit int) ([]ChoiceExample, []error, error) {
	var exs []ChoiceExample
	var bad []error
	var rec []string
	first := 0 // line number of rec[0]
	flush := func() {
		if len(rec) == 0 {
			return
		}
		ex, line, err := parseCBT(rec, raw)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s:%d: %w", path, first+line, err))
		} else {
			exs = append(exs, ex)
		}
		rec = rec[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan() && (limit <= 0 || len(exs) < limit); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			flush()
			continue
		}
		if len(rec) == 0 {
			first = line
		}
		rec = append(rec, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	flush() // the last record, if no blank line follows it
	return exs, bad, nil
}

// parseCBT turns one record into an example. On error it also returns the
// offending line's index in the record.
func parseCBT(rec []string, raw bool) (ChoiceExample, int, error) {
	if len(rec) != 21 {
		return ChoiceExample{}, 0, fmt.Errorf("record has %d lines; want 21", len(rec))
	}
	var story []string
	for i, l := range rec[:20] {
		text, err := cbtNumbered(l, i+1)
		if err != nil {
			return ChoiceExample{}, i, err
		}
		story = append(story, strings.Fields(text)...)
	}
	q, err := cbtNumbered(rec[20], 21)
	if err != nil {
		return ChoiceExample{}, 20, err
	}
	f := strings.Split(q, "\t")
	if len(f) != 4 {
		return ChoiceExample{}, 20, fmt.Errorf("question line has %d tab-separated fields; want 4 (question, answer, empty, candidates)", len(f))
	}
	question, answer := strings.Fields(f[0]), strings.TrimSpace(f[1])
	cands := strings.Split(strings.TrimSpace(f[3]), "|")
	if len(cands) != 10 {
		return ChoiceExample{}, 20, fmt.Errorf("%d candidates; want 10", len(cands))
	}
	blank := -1
	for i, t := range question {
		if strings.Contains(t, cbtBlank) {
			if blank >= 0 {
				return ChoiceExample{}, 20, fmt.Errorf("question has %s more than once", cbtBlank)
			}
			blank = i
		}
	}
	if blank < 0 {
		return ChoiceExample{}, 20, fmt.Errorf("question has no %s", cbtBlank)
	}
	ex := ChoiceExample{Answer: -1}
	toks := append(story, question...)
	at := len(story) + blank
	for i, c := range cands {
		if c == "" || strings.ContainsAny(c, " \t") {
			return ChoiceExample{}, 20, fmt.Errorf("candidate %d %q is not a word", i+1, c)
		}
		if c == answer && ex.Answer < 0 {
			ex.Answer = i
		}
		withCand := append([]string(nil), toks...)
		withCand[at] = strings.Replace(question[blank], cbtBlank, c, 1)
		text, starts := joinRaw(withCand)
		if !raw {
			text, starts = detok.Join(withCand)
		}
		ctx := strings.TrimRight(text[:starts[at]], " ")
		ex.Contexts = append(ex.Contexts, ctx)
		ex.Continuations = append(ex.Continuations, text[len(ctx):])
	}
	if ex.Answer < 0 {
		return ChoiceExample{}, 20, fmt.Errorf("answer %q is not among the candidates", answer)
	}
	// The context does not depend on the candidate; share it.
	shared := true
	for _, c := range ex.Contexts[1:] {
		shared = shared && c == ex.Contexts[0]
	}
	if shared {
		ex.Contexts = ex.Contexts[:1]
	}
	return ex, 0, nil
}

// cbtNumbered strips the line number n from a CBT line.
func cbtNumbered(l string, n int) (string, error) {
	num, text, ok := strings.Cut(l, " ")
	if got, err := strconv.Atoi(num); !ok || err != nil || got != n {
		return "", fmt.Errorf("line does not start with its number %d", n)
	}
	return text, nil
}

// joinRaw joins tokens with single spaces, returning each one's offset.
func joinRaw(toks []string) (string, []int) {
	starts := make([]int, len(toks))
	n := 0
	for i, t := range toks {
		if i > 0 {
			n++
		}
		starts[i] = n
		n += len(t)
	}
	return strings.Join(toks, " "), starts
}

// CBT evaluates Children's Book Test examples (or any single-context
// multiple-choice examples) by the accuracy of the most likely option.
func (e *Evaluator) CBT(ctx context.Context, task string, exs []ChoiceExample) (*ChoiceResult, error) {
	scores, skipped, err := e.Choices(ctx, task, exs)
	if err != nil {
		return nil, err
	}
	res := &ChoiceResult{Task: task, Skipped: skipped}
	right := 0
	for i, s := range scores {
		if s == nil {
			continue
		}
		res.N++
		if best(s) == exs[i].Answer {
			right++
		}
	}
	if res.N > 0 {
		res.Accuracy = float64(right) / float64(res.N)
	}
	return res, nil
}

// runCBT reads and evaluates a CBT file.
func (e *Evaluator) runCBT(ctx context.Context, task, path string, o Options) (*ChoiceResult, error) {
	exs, bad, err := readExamples(e, task, path, func(r io.Reader) ([]ChoiceExample, []error, error) {
		return ReadCBT(r, path, o.Raw, o.Limit)
	})
	if err != nil {
		return nil, err
	}
	res, err := e.CBT(ctx, task, exs)
	if err != nil {
		return nil, err
	}
	res.Skipped += bad
	return res, nil
}
