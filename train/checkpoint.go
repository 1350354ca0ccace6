package train

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/gpt2go/gpt2/format/half"
	"github.com/gpt2go/gpt2/format/safetensors"
	"github.com/gpt2go/gpt2/kernels"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
	"github.com/gpt2go/gpt2/train/data"
)

// A training checkpoint directory (--out) looks like this:
//
//	config.json, model.safetensors,   the latest weights in the Hugging Face
//	vocab.json, merges.txt            layout, loadable by model.Load(dir)
//	latest                            names the checkpoint to resume from
//	ckpt-000100/                      that checkpoint: model.safetensors
//	                                  (F32 master weights), config.json and
//	                                  train_state.bin (optimizer, data
//	                                  position, options, loss history)
//	loss.png                          the loss curves
//
// A save writes a new ckpt-<step> under a temporary name, syncs it, renames
// it into place, replaces the top-level model (a hard link or a complete
// temporary file, renamed), and only then points latest at it (a rename,
// so atomic). A kill at any moment therefore leaves latest naming a
// complete checkpoint whose weights and state are of the same step, and
// the top-level files complete. Older checkpoints are deleted last.

const (
	latestFile = "latest"
	stateFile  = "train_state.bin"
	ckptPrefix = "ckpt-"
)

// stateMagic starts train_state.bin; the last byte is the format version.
var stateMagic = [8]byte{'G', 'P', 'T', '2', 'T', 'R', 'N', 1}

// State is everything besides the weights that a resumed run needs to
// continue exactly where a saved one stopped.
type State struct {
	Step      int          `json:"step"` // optimizer steps done
	Config    model.Config `json:"config"`
	Options   Options      `json:"options"`
	Data      DataState    `json:"data"`
	History   History      `json:"history"`
	ParamsCRC uint32       `json:"params_crc32c"` // of the float32 weights, little-endian
	NParams   int          `json:"n_params"`
	AdamStep  int          `json:"adam_step"`
	M, V      []float32    `json:"-"`
}

// DataState is the training data's position, and what the data was, so
// that a resume can refuse different data.
type DataState struct {
	Position data.Position `json:"position"`
	Shards   []string      `json:"shards"` // base names
	Tokens   []int         `json:"tokens"` // per shard
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// float32Bytes returns the little-endian bytes of v, without copying
// where the machine is little-endian.
func float32Bytes(v []float32) []byte {
	if len(v) == 0 {
		return nil
	}
	if nativeLittleEndian {
		return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), 4*len(v))
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

var nativeLittleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

func paramsCRC(p []float32) uint32 { return crc32.Checksum(float32Bytes(p), castagnoli) }

// writeState writes st to path atomically: magic, the JSON header's length
// and the header, M and V as little-endian float32, and a CRC-32C of all
// of it, so that a damaged file is detected.
func writeState(path string, st *State) error {
	hdr, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write training state: %w", err)
	}
	return writeFileAtomic(path, func(f *os.File) error {
		crc := crc32.New(castagnoli)
		w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<20)
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(len(hdr)))
		for _, b := range [][]byte{stateMagic[:], n[:], hdr, float32Bytes(st.M), float32Bytes(st.V)} {
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		if err := w.Flush(); err != nil {
			return err
		}
		var sum [4]byte
		binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
		_, err := f.Write(sum[:])
		return err
	})
}

// readState reads and verifies a train_state.bin.
func readState(path string) (*State, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read training state: %w", err)
	}
	bad := func(why string) error { return fmt.Errorf("training state %s: %s", path, why) }
	if len(raw) < 20 || !bytes.Equal(raw[:8], stateMagic[:]) {
		return nil, bad("not a training state file (wrong magic or version)")
	}
	body, sum := raw[:len(raw)-4], binary.LittleEndian.Uint32(raw[len(raw)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, bad("checksum mismatch: the file is damaged or incomplete")
	}
	hlen := binary.LittleEndian.Uint64(body[8:16])
	if hlen > uint64(len(body)-16) {
		return nil, bad("header length out of range")
	}
	var st State
	if err := json.Unmarshal(body[16:16+hlen], &st); err != nil {
		return nil, bad(err.Error())
	}
	rest := body[16+hlen:]
	if uint64(len(rest)) != 8*uint64(st.NParams) {
		return nil, bad(fmt.Sprintf("%d bytes of optimizer moments for %d parameters", len(rest), st.NParams))
	}
	st.M, st.V = make([]float32, st.NParams), make([]float32, st.NParams)
	for i := range st.M {
		st.M[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
		st.V[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*(st.NParams+i):]))
	}
	return &st, nil
}

// SaveDType is the element type of saved weights.
type SaveDType string

// The element types SaveCheckpoint writes.
const (
	SaveF32 SaveDType = "f32"
	SaveF16 SaveDType = "f16"
)

// SaveCheckpoint writes m in the Hugging Face layout into dir: config.json,
// model.safetensors (tensors with HF names and no prefix, F32 or F16) and,
// if tok is not nil, the tokenizer's vocab.json and merges.txt. Each file
// is replaced atomically. The output projection is saved tied to wte, as
// in GPT-2's own checkpoints.
func SaveCheckpoint(dir string, m *model.Model, tok *tokenizer.Tokenizer, dtype SaveDType) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	l, err := NewLayout(m.Config)
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := writeModel(filepath.Join(dir, "model.safetensors"), l, tensorsOf(m), dtype); err != nil {
		return err
	}
	if err := writeConfig(dir, m.Config, dtype); err != nil {
		return err
	}
	if tok != nil {
		return writeTokenizer(dir, tok)
	}
	return nil
}

func writeModel(path string, l *Layout, ts [][]float32, dtype SaveDType) error {
	tensors := make([]safetensors.Tensor, len(l.Tensors))
	for i, t := range l.Tensors {
		if len(ts[i]) != t.Size() {
			return fmt.Errorf("save model: %s has %d values, want %d", t.Name, len(ts[i]), t.Size())
		}
		switch dtype {
		case SaveF32, "":
			tensors[i] = safetensors.Tensor{Name: t.Name, DType: safetensors.F32, Shape: slices.Clone(t.Shape), Data: float32Bytes(ts[i])}
		case SaveF16:
			b := make([]byte, 2*len(ts[i]))
			for j, v := range ts[i] {
				binary.LittleEndian.PutUint16(b[2*j:], half.F32ToF16(v))
			}
			tensors[i] = safetensors.Tensor{Name: t.Name, DType: safetensors.F16, Shape: slices.Clone(t.Shape), Data: b}
		default:
			return fmt.Errorf("save model: unknown dtype %q (want f32 or f16)", dtype)
		}
	}
	if err := safetensors.WriteFile(path, tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

func writeConfig(dir string, cfg model.Config, dtype SaveDType) error {
	dt := kernels.F32
	if dtype == SaveF16 {
		dt = kernels.F16
	}
	b, err := model.HFConfigJSON(cfg, dt)
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, "config.json"), func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// writeTokenizer writes the tokenizer's files into dir, each replaced
// atomically: they are written into a temporary directory first.
func writeTokenizer(dir string, tok *tokenizer.Tokenizer) error {
	tmp, err := os.MkdirTemp(dir, ".tokenizer.tmp*")
	if err != nil {
		return fmt.Errorf("save tokenizer: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := tok.WriteFiles(tmp); err != nil {
		return fmt.Errorf("save tokenizer: %w", err)
	}
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return fmt.Errorf("save tokenizer: %w", err)
	}
	for _, e := range entries {
		src := filepath.Join(tmp, e.Name())
		if f, err := os.Open(src); err == nil {
			f.Sync()
			f.Close()
		}
		if err := os.Rename(src, filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("save tokenizer: %w", err)
		}
	}
	return syncDir(dir)
}

// ckptName is the directory name of the checkpoint after step steps.
func ckptName(step int) string { return fmt.Sprintf("%s%06d", ckptPrefix, step) }

func ckptStep(name string) (int, bool) {
	s, ok := strings.CutPrefix(name, ckptPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// readLatest returns the checkpoint directory name latest points to.
func readLatest(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, latestFile))
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(b))
	if _, ok := ckptStep(name); !ok || strings.ContainsAny(name, `/\`) {
		return "", fmt.Errorf("%s: %q does not name a checkpoint", filepath.Join(dir, latestFile), name)
	}
	return name, nil
}

// saver writes a run's checkpoints.
type saver struct {
	dir            string
	tok            *tokenizer.Tokenizer
	dtype          SaveDType
	crash          func(point string)
	wroteTokenizer bool
}

// save writes the checkpoint of st with the weights params (laid out by
// l), as described at the top of this file.
func (s *saver) save(l *Layout, params []float32, st *State) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	name := ckptName(st.Step)
	if cur, err := readLatest(s.dir); err == nil && cur == name {
		return nil // this step is saved already
	}
	st.ParamsCRC = paramsCRC(params)
	st.NParams = len(params)

	tmp := filepath.Join(s.dir, "."+name+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	ts := make([][]float32, len(l.Tensors))
	for i := range ts {
		ts[i] = l.Slice(params, i)
	}
	if err := writeModel(filepath.Join(tmp, "model.safetensors"), l, ts, SaveF32); err != nil {
		return err
	}
	s.crash("save-model")
	if err := writeConfig(tmp, l.Config, SaveF32); err != nil {
		return err
	}
	if err := writeState(filepath.Join(tmp, stateFile), st); err != nil {
		return err
	}
	syncDir(tmp)
	s.crash("save-state")

	final := filepath.Join(s.dir, name)
	if err := os.RemoveAll(final); err != nil { // a stale one, not the latest
		return fmt.Errorf("save checkpoint: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	syncDir(s.dir)
	s.crash("save-rename")

	// The top-level Hugging Face copy, complete before latest names the
	// checkpoint, so that a directory with latest is always a loadable
	// model.
	if err := s.export(final, l, ts); err != nil {
		return err
	}
	s.crash("save-export")

	if err := writeFileAtomic(filepath.Join(s.dir, latestFile), func(f *os.File) error {
		_, err := f.WriteString(name + "\n")
		return err
	}); err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	s.crash("save-latest")

	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		n := e.Name()
		if _, ok := ckptStep(n); ok && n != name {
			os.RemoveAll(filepath.Join(s.dir, n))
		} else if strings.HasPrefix(n, "."+ckptPrefix) && strings.HasSuffix(n, ".tmp") {
			os.RemoveAll(filepath.Join(s.dir, n))
		}
	}
	return nil
}

func (s *saver) export(ckpt string, l *Layout, ts [][]float32) error {
	top := filepath.Join(s.dir, "model.safetensors")
	if s.dtype == SaveF16 {
		if err := writeModel(top, l, ts, SaveF16); err != nil {
			return err
		}
	} else {
		// Share the checkpoint's file: link it under a temporary name,
		// then rename over the old one. Where links are not possible,
		// write a copy.
		tmp := filepath.Join(s.dir, ".model.safetensors.tmp")
		os.Remove(tmp)
		if err := os.Link(filepath.Join(ckpt, "model.safetensors"), tmp); err == nil {
			if err := os.Rename(tmp, top); err != nil {
				os.Remove(tmp)
				return fmt.Errorf("save checkpoint: %w", err)
			}
			syncDir(s.dir)
		} else if err := writeModel(top, l, ts, SaveF32); err != nil {
			return err
		}
	}
	if err := writeConfig(s.dir, l.Config, s.dtype); err != nil {
		return err
	}
	if s.tok != nil && !s.wroteTokenizer {
		if err := writeTokenizer(s.dir, s.tok); err != nil {
			return err
		}
		s.wroteTokenizer = true
	}
	return nil
}

// ErrNoCheckpoint is returned (wrapped) when a directory holds no training
// checkpoint to resume from.
var ErrNoCheckpoint = errors.New("no training checkpoint")

// loadCheckpoint reads the checkpoint latest points to in dir, verified:
// the state's checksum, its step against the directory's name, and the
// weights against the checksum the state recorded. When latest is missing
// or its checkpoint is damaged, the newest intact ckpt-* directory is used.
func loadCheckpoint(dir string) (*State, []float32, string, error) {
	var names []string
	if name, err := readLatest(dir); err == nil {
		names = append(names, name)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, "", fmt.Errorf("resume %s: %w (the directory does not exist)", dir, ErrNoCheckpoint)
	} else if err != nil {
		return nil, nil, "", fmt.Errorf("resume: %w", err)
	}
	var others []int
	for _, e := range entries {
		if n, ok := ckptStep(e.Name()); ok && e.IsDir() {
			others = append(others, n)
		}
	}
	slices.Sort(others)
	for i := len(others) - 1; i >= 0; i-- {
		if n := ckptName(others[i]); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return nil, nil, "", fmt.Errorf("resume %s: %w (no %s file or %s* directory; to fine-tune a model, use --init)", dir, ErrNoCheckpoint, latestFile, ckptPrefix)
	}
	var errs []error
	for _, name := range names {
		st, params, err := loadCkptDir(filepath.Join(dir, name))
		if err == nil {
			return st, params, name, nil
		}
		errs = append(errs, err)
	}
	return nil, nil, "", fmt.Errorf("resume %s: %w: %w", dir, ErrNoCheckpoint, errors.Join(errs...))
}

func loadCkptDir(path string) (*State, []float32, error) {
	st, err := readState(filepath.Join(path, stateFile))
	if err != nil {
		return nil, nil, err
	}
	if step, _ := ckptStep(filepath.Base(path)); step != st.Step {
		return nil, nil, fmt.Errorf("checkpoint %s holds the state of step %d", path, st.Step)
	}
	m, err := model.Load(path)
	if err != nil {
		return nil, nil, err
	}
	defer m.Close()
	l, err := NewLayout(m.Config)
	if err != nil {
		return nil, nil, err
	}
	if m.Config != st.Config {
		return nil, nil, fmt.Errorf("checkpoint %s: model config %+v differs from the state's %+v", path, m.Config, st.Config)
	}
	params, err := Flatten(l, m)
	if err != nil {
		return nil, nil, err
	}
	if len(params) != st.NParams || paramsCRC(params) != st.ParamsCRC {
		return nil, nil, fmt.Errorf("checkpoint %s: the weights are not those the training state was saved with", path)
	}
	return st, params, nil
}
