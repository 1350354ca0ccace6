package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/internal/fixture"
	"github.com/gpt2go/gpt2/model"
	"github.com/gpt2go/gpt2/tokenizer"
)

// The fixture model is loaded once and shared: the servers only read it.
var (
	fixtureOnce  sync.Once
	fixtureModel *model.Model
	fixtureTok   *tokenizer.Tokenizer
	fixtureErr   error
)

func loadFixture(t testing.TB) (*model.Model, *tokenizer.Tokenizer) {
	t.Helper()
	dir := fixture.HFDir(t)
	fixtureOnce.Do(func() {
		fixtureModel, fixtureErr = model.Load(dir)
		if fixtureErr == nil {
			fixtureTok, fixtureErr = tokenizer.LoadDir(dir)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixtureModel, fixtureTok
}

// testServer is a Server listening on a loopback port.
type testServer struct {
	*Server
	url  string
	addr string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// start runs a server for the fixture model; edit adjusts its config and
// delay slows each scheduler step.
func start(t testing.TB, edit func(*Config), delay time.Duration) *testServer {
	t.Helper()
	m, tok := loadFixture(t)
	logs := &syncBuffer{}
	cfg := Config{Model: m, Tokenizer: tok, ModelID: "tiny-real-vocab", Log: logs}
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.sched.stepDelay = delay
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, url: "http://" + ln.Addr().String(), addr: ln.Addr().String(), logs: logs, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-ts.done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// do sends a request and returns the status and body.
func (ts *testServer) do(t testing.TB, method, path, body string, header ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// complete posts a completion request that must succeed.
func (ts *testServer) complete(t testing.TB, req any) completion {
	t.Helper()
	code, _, body := ts.do(t, "POST", "/v1/completions", mustJSON(t, req))
	if code != 200 {
		t.Fatalf("completion %s: %d %s", mustJSON(t, req), code, body)
	}
	var c completion
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return c
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sseStream reads a streamed completion.
type sseStream struct {
	resp   *http.Response
	r      *bufio.Reader
	cancel context.CancelFunc
}

func (ts *testServer) stream(t testing.TB, req any) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, "POST", ts.url+"/v1/completions", strings.NewReader(mustJSON(t, req)))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("stream Content-Type %q", ct)
	}
	return &sseStream{resp: resp, r: bufio.NewReader(resp.Body), cancel: cancel}
}

// next returns the next event's data ("[DONE]" at the end), or io.EOF.
func (s *sseStream) next() (string, error) {
	var data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if data != "" {
				return data, nil
			}
			continue
		}
		d, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			return "", errors.New("not a data line: " + strconv.Quote(line))
		}
		data += d
	}
}

func (s *sseStream) close() {
	s.cancel()
	s.resp.Body.Close()
}

// readAll reads the rest of a stream: its chunks and whether [DONE] came.
func (s *sseStream) readAll(t testing.TB) (chunks []completion, errEvent *apiError, done bool) {
	t.Helper()
	defer s.close()
	for {
		data, err := s.next()
		if err == io.EOF {
			return chunks, errEvent, false
		}
		if err != nil {
			t.Fatal(err)
		}
		if data == "[DONE]" {
			if _, err := s.next(); err != io.EOF {
				t.Errorf("data after [DONE]: %v", err)
			}
			return chunks, errEvent, true
		}
		var e struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal([]byte(data), &e) == nil && e.Error != nil {
			errEvent = e.Error
			continue
		}
		var c completion
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("chunk %s: %v", data, err)
		}
		chunks = append(chunks, c)
	}
}

// metric reads one sample from /metrics ("name" or `name{label="x"}`); it
// is 0 when absent.
func (ts *testServer) metric(t testing.TB, name string) float64 {
	t.Helper()
	_, _, body := ts.do(t, "GET", "/metrics", "")
	for line := range strings.Lines(string(body)) {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// waitFor polls cond until it holds, failing after a few seconds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apiErrorOf decodes an error response, failing unless it has OpenAI's
// shape.
func apiErrorOf(t testing.TB, body []byte) apiError {
	t.Helper()
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw["error"] == nil {
		t.Fatalf("error body %s: not {\"error\": {...}}", body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := raw["error"][k]; !ok {
			t.Errorf("error body %s lacks %q", body, k)
		}
	}
	var e struct{ Error apiError }
	json.Unmarshal(body, &e)
	if e.Error.Message == "" || e.Error.Type == "" {
		t.Errorf("error body %s: empty message or type", body)
	}
	return e.Error
}
