package data

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gpt2go/gpt2/internal/progress"
)

// Encoder turns text into token ids; *tokenizer.Tokenizer is one.
type Encoder interface {
	Encode(text string) []int
}

// PrepareOptions say what Prepare reads and writes.
type PrepareOptions struct {
	Out    string   // directory for the shards, created if needed
	Inputs []string // text files, or directories searched for them
	// ValFiles are held out as the validation set. When empty,
	// ValFraction of the bytes is held out instead, as whole documents
	// chosen by a hash of their paths (or, with a single document, as its
	// tail).
	ValFiles    []string
	ValFraction float64
	ShardTokens int // tokens per shard; 0 means 100M, as llm.c's
	Tokenizer   Encoder
	Workers     int           // tokenizing goroutines; 0 means GOMAXPROCS
	Progress    io.Writer     // progress reports, or nil
	ChunkBytes  int           // the size text is cut into for the workers; 0 means 1 MiB
	Interval    time.Duration // between progress lines when not on a terminal; 0 means 5s
}

// PrepareResult describes what Prepare wrote.
type PrepareResult struct {
	TrainShards, ValShards []string
	TrainTokens, ValTokens int64
	TrainDocs, ValDocs     int
	Bytes                  int64
}

// document is one input file, or a part of one.
type document struct {
	path       string
	start, end int64 // byte range
	val        bool
}

// Prepare tokenizes text files into token shards: train_000000.bin, ...
// and, when something is held out, val_000000.bin, ... Each document (a
// file) is written as <|endoftext|> followed by its tokens, in sorted path
// order, so the output is the same however many workers run. Files are
// cut into chunks at places where GPT-2's pre-tokenizer always breaks, so
// tokenizing the chunks in parallel gives exactly the tokens of the whole.
func Prepare(ctx context.Context, o PrepareOptions) (*PrepareResult, error) {
	if o.Tokenizer == nil {
		return nil, errors.New("prepare: no tokenizer")
	}
	if o.ShardTokens == 0 {
		o.ShardTokens = 100_000_000
	}
	if o.ShardTokens < 1 || o.ShardTokens > 1<<31-1 {
		return nil, fmt.Errorf("prepare: --shard-tokens %d must be between 1 and 2^31-1", o.ShardTokens)
	}
	if o.ValFraction < 0 || o.ValFraction >= 1 {
		return nil, fmt.Errorf("prepare: --val-fraction %g must be in [0, 1)", o.ValFraction)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = 1 << 20
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	docs, err := plan(o)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	return run(ctx, o, docs)
}

// listFiles expands files and directories into a sorted list of files,
// leaving out hidden ones in directories.
func listFiles(inputs []string) ([]string, error) {
	seen := map[string]bool{}
	var files []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		if !st.IsDir() {
			if p := filepath.Clean(in); !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
			continue
		}
		err = filepath.WalkDir(in, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if p != in && strings.HasPrefix(d.Name(), ".") {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			if d.Type().IsRegular() && !seen[p] {
				seen[p] = true
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	slices.Sort(files)
	return files, nil
}

// plan lists the documents and decides which are held out.
func plan(o PrepareOptions) ([]document, error) {
	files, err := listFiles(o.Inputs)
	if err != nil {
		return nil, err
	}
	valFiles, err := listFiles(o.ValFiles)
	if err != nil {
		return nil, err
	}
	isVal := map[string]bool{}
	for _, f := range valFiles {
		isVal[f] = true
		if !slices.Contains(files, f) {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	if len(files) == 0 {
		return nil, errors.New("prepare: no input files")
	}
	docs := make([]document, len(files))
	var total int64
	for i, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		docs[i] = document{path: f, end: st.Size(), val: isVal[f]}
		total += st.Size()
	}
	if len(valFiles) > 0 || o.ValFraction == 0 {
		return docs, nil
	}
	if len(docs) == 1 {
		// One document: hold out its tail, cut where tokenization splits.
		d := docs[0]
		text, err := os.ReadFile(d.path)
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
		cut := safeCut(text, int(float64(len(text))*(1-o.ValFraction)), len(text))
		if cut <= 0 || cut >= len(text) {
			return nil, fmt.Errorf("prepare: %s is too small to hold out %g of it for validation", d.path, o.ValFraction)
		}
		return []document{{path: d.path, end: int64(cut)}, {path: d.path, start: int64(cut), end: d.end, val: true}}, nil
	}
	// Whole documents, in an order fixed by their paths' hashes, until the
	// held-out bytes reach the fraction; always at least one, never all.
	order := make([]int, len(docs))
	hash := make([]uint64, len(docs))
	for i, d := range docs {
		order[i] = i
		h := fnv.New64a()
		h.Write([]byte(filepath.ToSlash(d.path)))
		hash[i] = h.Sum64()
	}
	slices.SortFunc(order, func(a, b int) int {
		if hash[a] != hash[b] {
			if hash[a] < hash[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(docs[a].path, docs[b].path)
	})
	var held int64
	for k, i := range order {
		if k == len(order)-1 || (k > 0 && float64(held) >= o.ValFraction*float64(total)) {
			break
		}
		docs[i].val = true
		held += docs[i].end - docs[i].start
	}
	return docs, nil
}

// safeCut returns the first position at or after want (and before limit)
// where text can be cut without changing its tokenization: a whitespace
// byte ('\n' preferred, else ' ') following a rune that is not whitespace.
// GPT-2's pre-tokenizer has no look-behind and its pieces never run from
// a non-space into a space, so a piece always ends there, and what
// follows is split the same as if it stood alone. It returns limit if
// there is no such place.
func safeCut(text []byte, want, limit int) int {
	if want <= 0 {
		return 0
	}
	for _, sep := range []byte{'\n', ' '} {
		for i := want; i < limit; i++ {
			if text[i] == sep {
				r, _ := utf8.DecodeLastRune(text[:i])
				if i > 0 && !unicode.IsSpace(r) {
					return i
				}
			}
		}
	}
	return limit
}

type chunk struct {
	seq      int
	doc      int
	docStart bool // the first chunk of its document
	docEnd   bool
	text     []byte
	tokens   []uint16
	err      error
}

// run tokenizes the documents with a pool of workers and writes the
// tokens in order.
func run(ctx context.Context, o PrepareOptions, docs []document) (*PrepareResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var totalBytes int64
	for _, d := range docs {
		totalBytes += d.end - d.start
	}

	jobs := make(chan *chunk)
	results := make(chan *chunk)
	// At most this many chunks are read but not yet written.
	window := make(chan struct{}, 4*o.Workers)
	var readErr error
	go func() {
		defer close(jobs)
		seq := 0
		for di, d := range docs {
			text, err := readRange(d)
			if err != nil {
				readErr = err
				cancel()
				return
			}
			for pos, first := 0, true; first || pos < len(text); first = false {
				end := safeCut(text, pos+o.ChunkBytes, len(text))
				if end < pos+1 && len(text) > 0 {
					end = len(text)
				}
				c := &chunk{seq: seq, doc: di, docStart: first, docEnd: end >= len(text), text: text[pos:end]}
				seq++
				pos = end
				select {
				case window <- struct{}{}:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for range o.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range jobs {
				ids := o.Tokenizer.Encode(string(c.text))
				c.tokens = make([]uint16, len(ids))
				for i, id := range ids {
					if id < 0 || id > 0xffff {
						c.err = fmt.Errorf("prepare: %s: token id %d does not fit the uint16 shard format", docs[c.doc].path, id)
						break
					}
					c.tokens[i] = uint16(id)
				}
				select {
				case results <- c:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(results)
	}()

	res := &PrepareResult{}
	train := newShardSet(o.Out, "train", o.ShardTokens)
	val := newShardSet(o.Out, "val", o.ShardTokens)
	defer train.abort()
	defer val.abort()
	rep := progress.New(o.Progress, o.Interval)
	start := time.Now()
	pending := map[int]*chunk{}
	next, filesDone := 0, 0
	var bytesDone, tokens int64
	report := func() {
		el := time.Since(start).Seconds()
		eta := "?"
		if bytesDone > 0 {
			eta = progress.Duration(time.Duration(el * float64(totalBytes-bytesDone) / float64(bytesDone) * float64(time.Second)))
		}
		rep.Update("prepare: %d/%d files, %.1f/%.1f MB, %d tokens, %.0f tokens/s, ETA %s",
			filesDone, len(docs), float64(bytesDone)/1e6, float64(totalBytes)/1e6, tokens, float64(tokens)/max(el, 1e-9), eta)
	}
	for c := range results {
		if c.err != nil {
			cancel()
			return nil, c.err
		}
		pending[c.seq] = c
		for {
			c, ok := pending[next]
			if !ok {
				break
			}
			delete(pending, next)
			next++
			<-window
			d := docs[c.doc]
			set := train
			if d.val {
				set = val
			}
			if c.docStart {
				if err := set.write([]uint16{EndOfText}); err != nil {
					return nil, err
				}
				tokens++
				if d.val {
					res.ValDocs++
				} else {
					res.TrainDocs++
				}
			}
			if err := set.write(c.tokens); err != nil {
				return nil, err
			}
			tokens += int64(len(c.tokens))
			bytesDone += int64(len(c.text))
			if c.docEnd {
				filesDone++
			}
			report()
		}
	}
	if readErr != nil {
		return nil, readErr
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	var err error
	if res.TrainShards, err = train.close(); err != nil {
		return nil, err
	}
	if res.ValShards, err = val.close(); err != nil {
		return nil, err
	}
	res.TrainTokens, res.ValTokens, res.Bytes = train.total, val.total, totalBytes
	rep.Done()
	// Shards of an earlier, larger run would be read as part of this one.
	for _, prefix := range []string{"train", "val"} {
		old, _ := filepath.Glob(filepath.Join(o.Out, prefix+"_*.bin"))
		for _, f := range old {
			if !slices.Contains(res.TrainShards, f) && !slices.Contains(res.ValShards, f) {
				os.Remove(f)
			}
		}
	}
	return res, nil
}

func readRange(d document) ([]byte, error) {
	f, err := os.Open(d.path)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	defer f.Close()
	buf := make([]byte, d.end-d.start)
	if _, err := f.ReadAt(buf, d.start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("prepare: read %s: %w", d.path, err)
	}
	return buf, nil
}

// shardSet writes a stream of tokens as numbered shards of at most max
// tokens each.
type shardSet struct {
	dir, prefix string
	max         int64
	cur         *ShardWriter
	paths       []string
	total       int64
}

func newShardSet(dir, prefix string, max int) *shardSet {
	return &shardSet{dir: dir, prefix: prefix, max: int64(max)}
}

func (s *shardSet) write(tokens []uint16) error {
	for len(tokens) > 0 {
		if s.cur == nil {
			p := filepath.Join(s.dir, fmt.Sprintf("%s_%06d.bin", s.prefix, len(s.paths)))
			w, err := CreateShard(p)
			if err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
			s.cur = w
			s.paths = append(s.paths, p)
		}
		n := min(int64(len(tokens)), s.max-s.cur.Len())
		if err := s.cur.Write(tokens[:n]); err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.total += n
		tokens = tokens[n:]
		if s.cur.Len() == s.max {
			err := s.cur.Close()
			s.cur = nil
			if err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
		}
	}
	return nil
}

func (s *shardSet) close() ([]string, error) {
	if s.cur != nil {
		err := s.cur.Close()
		s.cur = nil
		if err != nil {
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	return s.paths, nil
}

func (s *shardSet) abort() {
	if s.cur != nil {
		s.cur.Abort()
		s.cur = nil
	}
}
