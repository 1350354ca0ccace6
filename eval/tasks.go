package eval

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Result is a task's outcome. Each task's result marshals to the JSON
// object documented on its type.
type Result interface {
	TaskName() string
}

// TaskFile names a task and the file it reads, relative to a data
// directory laid out as /work/shared/data is.
type TaskFile struct {
	Task string
	File string
}

// Tasks are the tasks in the order of the paper's Table 3, then Winograd,
// with their files under a data directory. The enwik8 and text8 files are
// the full 100M-byte ones; their last 5M bytes are the test set.
var Tasks = []TaskFile{
	{"lambada", "lambada/lambada_test.jsonl"},
	{"cbt-cn", "cbt/cbtest_CN_test_2500ex.txt"},
	{"cbt-ne", "cbt/cbtest_NE_test_2500ex.txt"},
	{"wikitext2", "wikitext/wikitext-2.wiki.test.tokens"},
	{"ptb", "ptb/ptb.test.txt"},
	{"enwik8", "enwik8/enwik8"},
	{"text8", "text8/text8"},
	{"wikitext103", "wikitext/wikitext-103.wiki.test.tokens"},
	{"1bw", "1bw/news.en.heldout-00000-of-00050"},
	{"wsc", "wsc273/wsc273.llmfoundry.jsonl"},
}

// TaskNames lists the task names.
func TaskNames() []string {
	var names []string
	for _, t := range Tasks {
		names = append(names, t.Task)
	}
	return names
}

// Run evaluates a task on the file at path.
func (e *Evaluator) Run(ctx context.Context, task, path string, o Options) (Result, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	if o.Limit < 0 {
		return nil, fmt.Errorf("limit must not be negative (got %d)", o.Limit)
	}
	if _, ok := lmTasks[task]; !ok && (o.Window != 0 || o.Stride != 0) {
		return nil, fmt.Errorf("%s: window and stride apply to language-modelling tasks only", task)
	}
	switch task {
	case "lambada":
		return e.runLambada(ctx, path, o)
	case "cbt-cn", "cbt-ne":
		return e.runCBT(ctx, task, path, o)
	case "wsc":
		return e.runWSC(ctx, path, o)
	}
	if _, ok := lmTasks[task]; ok {
		return e.runLM(ctx, task, path, o)
	}
	names := TaskNames()
	slices.Sort(names)
	return nil, fmt.Errorf("unknown task %q (tasks: %s)", task, strings.Join(names, ", "))
}
