package data

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// EndOfText separates documents in a shard: prepared shards start every
// document with it, as llm.c's do.
const EndOfText = 50256

// Shards lists the token files that path names: path itself if it is a
// file; otherwise the files "<prefix>_*.bin" in the directory path,
// sorted, or when there are none and prefix is "train", every "*.bin"
// except "val_*.bin".
func Shards(path, prefix string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("token data: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil
	}
	files, err := filepath.Glob(filepath.Join(path, prefix+"_*.bin"))
	if err != nil {
		return nil, fmt.Errorf("token data %s: %w", path, err)
	}
	if len(files) == 0 && prefix == "train" {
		all, _ := filepath.Glob(filepath.Join(path, "*.bin"))
		for _, f := range all {
			if !strings.HasPrefix(filepath.Base(f), "val_") {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("token data %s: no %s_*.bin token shards in the directory", path, prefix)
	}
	slices.Sort(files)
	return files, nil
}

// Position is where a Loader is in its data: the next batch starts at
// token Offset of shard Shard, in pass Epoch over all shards.
type Position struct {
	Epoch  int   `json:"epoch"`
	Shard  int   `json:"shard"`
	Offset int64 `json:"offset"`
}

// Loader yields batches of B*T+1 consecutive tokens, llm.c's sequential
// way: each batch starts B*T tokens after the previous one, and when fewer
// than B*T+1 tokens remain in a shard the next batch starts at the
// beginning of the next shard (after the last shard, the first one again).
// Row b of a batch is tokens[b*T : b*T+T+1], so rows overlap by one token.
type Loader struct {
	B, T    int
	shards  []*Shard
	pos     Position
	shuffle bool
	seed    uint64

	cur    []uint16 // the current shard's tokens, shuffled when asked
	curKey [2]int   // (epoch, shard) of cur; shard -1 when unset
}

// Options are a Loader's optional settings.
type Options struct {
	// Vocab, when positive, makes Open refuse shards with a token id >=
	// Vocab.
	Vocab int
	// Shuffle reorders the documents (runs starting at <|endoftext|>) of
	// each shard, differently in each epoch, as a function of Seed alone,
	// so that a Position still identifies the next batch exactly.
	Shuffle bool
	Seed    uint64
}

// Open opens the token files for batches of b rows of t tokens, checking
// every file before returning: its header and size, that each token is in
// the vocabulary, and that it holds at least one batch.
func Open(paths []string, b, t int, opt Options) (*Loader, error) {
	if b <= 0 || t <= 0 {
		return nil, fmt.Errorf("token data: batch %d x sequence %d: both must be positive", b, t)
	}
	if len(paths) == 0 {
		return nil, errors.New("token data: no shards")
	}
	l := &Loader{B: b, T: t, shuffle: opt.Shuffle, seed: opt.Seed, curKey: [2]int{0, -1}}
	for _, p := range paths {
		s, err := OpenShard(p)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.shards = append(l.shards, s)
		if opt.Vocab > 0 {
			if err := s.CheckVocab(opt.Vocab); err != nil {
				l.Close()
				return nil, err
			}
		}
		if n := s.Len(); n < b*t+1 {
			l.Close()
			return nil, fmt.Errorf("token shard %s: %d tokens, fewer than one batch needs (B*T+1 = %d*%d+1 = %d)",
				p, n, b, t, b*t+1)
		}
	}
	return l, nil
}

// Paths returns the shards' paths.
func (l *Loader) Paths() []string {
	p := make([]string, len(l.shards))
	for i, s := range l.shards {
		p[i] = s.Path
	}
	return p
}

// Lens returns the shards' token counts.
func (l *Loader) Lens() []int {
	n := make([]int, len(l.shards))
	for i, s := range l.shards {
		n[i] = s.Len()
	}
	return n
}

// Tokens is the total number of tokens in all shards.
func (l *Loader) Tokens() int64 {
	var n int64
	for _, s := range l.shards {
		n += int64(s.Len())
	}
	return n
}

// Position returns where the next batch starts.
func (l *Loader) Position() Position { return l.pos }

// Seek makes the next batch start at p, as a saved Position says.
func (l *Loader) Seek(p Position) error {
	if p.Shard < 0 || p.Shard >= len(l.shards) || p.Offset < 0 || p.Offset > int64(l.shards[p.Shard].Len()) || p.Epoch < 0 {
		return fmt.Errorf("token data: position %+v is outside the %d shards", p, len(l.shards))
	}
	l.pos = p
	return nil
}

// Reset goes back to the first batch.
func (l *Loader) Reset() { l.pos = Position{} }

// Next returns the next batch: B*T+1 tokens, valid until the next call.
func (l *Loader) Next() []uint16 {
	n := int64(l.B * l.T)
	if l.pos.Offset+n+1 > int64(l.shards[l.pos.Shard].Len()) {
		l.pos.Offset = 0
		l.pos.Shard++
		if l.pos.Shard == len(l.shards) {
			l.pos.Shard = 0
			l.pos.Epoch++
		}
	}
	toks := l.tokens()
	batch := toks[l.pos.Offset : l.pos.Offset+n+1]
	l.pos.Offset += n
	return batch
}

// tokens returns the current shard's tokens in this epoch's order.
func (l *Loader) tokens() []uint16 {
	s := l.shards[l.pos.Shard]
	if !l.shuffle {
		return s.Tokens()
	}
	key := [2]int{l.pos.Epoch, l.pos.Shard}
	if key != l.curKey {
		l.cur = ShuffleDocuments(l.cur[:0], s.Tokens(), l.seed, l.pos.Epoch, l.pos.Shard)
		l.curKey = key
	}
	return l.cur
}

// ShuffleDocuments appends to dst the documents of tokens (each starting
// at an <|endoftext|>; any tokens before the first one form a document
// too) in an order determined by seed, epoch and shard alone.
func ShuffleDocuments(dst, tokens []uint16, seed uint64, epoch, shard int) []uint16 {
	var starts []int
	for i, t := range tokens {
		if i == 0 || t == EndOfText {
			starts = append(starts, i)
		}
	}
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)<<32|uint64(uint32(shard))))
	order := rng.Perm(len(starts))
	for _, d := range order {
		end := len(tokens)
		if d+1 < len(starts) {
			end = starts[d+1]
		}
		dst = append(dst, tokens[starts[d]:end]...)
	}
	return dst
}

// Close releases the shards.
func (l *Loader) Close() error {
	var first error
	for _, s := range l.shards {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	l.shards = nil
	return first
}
