package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gpt2go/gpt2/internal/fixture"
)

// TestServe runs `gpt2 serve` on a free loopback port, checks that its
// completions equal `gpt2 generate`'s, and stops it with SIGTERM while a
// request is in flight: the request completes and the server exits 0.
// serving is a `gpt2 serve` child process.
type serving struct {
	cmd    *exec.Cmd
	url    string
	exited chan error
	logs   *bytes.Buffer // stderr after the startup line, complete once exited
}

// startServe runs `gpt2 serve` with args on a free loopback port and waits
// for its startup line.
func startServe(t *testing.T, args ...string) *serving {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	cmd.Env = append(os.Environ(), runAsGPT2+"=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	s := &serving{cmd: cmd, exited: make(chan error, 1), logs: &bytes.Buffer{}}
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() {
		t.Fatalf("no startup line: %v", lines.Err())
	}
	first := lines.Text()
	go func() {
		for lines.Scan() {
			s.logs.WriteString(lines.Text() + "\n")
		}
		s.exited <- cmd.Wait()
	}()
	s.url = regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
	if s.url == "" {
		t.Fatalf("startup line %q: no address", first)
	}
	return s
}

// stop sends SIGTERM and waits for a clean exit.
func (s *serving) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.wait(t)
}

func (s *serving) wait(t *testing.T) {
	t.Helper()
	select {
	case err := <-s.exited:
		if err != nil {
			t.Errorf("exit: %v; stderr:\n%s", err, s.logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gpt2 serve did not exit after SIGTERM")
	}
}

func (s *serving) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestServe runs `gpt2 serve` on a free loopback port, checks that its
// completions equal `gpt2 generate`'s, and stops it with SIGTERM while a
// request is in flight: the request completes and the server exits 0.
func TestServe(t *testing.T) {
	dir := fixture.HFDir(t)
	srv := startServe(t, "--model", dir, "--max-batch", "4", "--threads", "1")
	addr := srv.url

	post := func(body string) *http.Response {
		t.Helper()
		resp, err := http.Post(addr+"/v1/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	// temperature 0 (and a seed) give generate's output.
	for _, args := range [][]string{{"--temperature", "0"}, {"--seed", "5", "--top-k", "20"}} {
		gen := parseGenerated(t, gpt2OK(t, "", append([]string{"generate", "--model", dir, "--prompt", "The quick brown fox", "-n", "10", "--json"}, args...)...))[0]
		body := `{"prompt": "The quick brown fox", "max_tokens": 10, "temperature": 0}`
		if args[0] == "--seed" {
			body = `{"prompt": "The quick brown fox", "max_tokens": 10, "seed": 5, "top_k": 20}`
		}
		resp := post(body)
		var c struct {
			Choices []struct{ Text string }
		}
		json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(c.Choices) != 1 || c.Choices[0].Text != gen.Text {
			t.Errorf("%v: serve %d %+v, generate %q", args, resp.StatusCode, c, gen.Text)
		}
	}
	if b := srv.get(t, "/v1/models"); !strings.Contains(b, `"id":"tiny-real-vocab"`) {
		t.Errorf("/v1/models: %s", b)
	}

	// A long streamed request, then SIGTERM.
	resp := post(`{"prompt": "x", "max_tokens": 120, "stream": true, "temperature": 0}`)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if err != nil || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") || !strings.Contains(string(rest), `"finish_reason":"length"`) {
		t.Errorf("in-flight stream after SIGTERM: %v, ends %q", err, rest[max(0, len(rest)-200):])
	}
	srv.wait(t)
	log := srv.logs.String()
	if n := strings.Count(log, "POST /v1/completions 200"); n != 3 {
		t.Errorf("%d completion log lines, want 3:\n%s", n, log)
	}
	if !strings.Contains(log, "stopped") {
		t.Errorf("no shutdown message:\n%s", log)
	}
}

// TestServeDefaultModel serves the built-in model when no --model is given.
func TestServeDefaultModel(t *testing.T) {
	srv := startServe(t)
	if b := srv.get(t, "/v1/models"); !strings.Contains(b, `"id":"gpt2-default"`) {
		t.Errorf("/v1/models: %s", b)
	}
	resp, err := http.Post(srv.url+"/v1/completions", "application/json", strings.NewReader(`{"prompt": "The king said", "max_tokens": 5, "temperature": 0}`))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Usage struct {
			CompletionTokens int `json:"completion_tokens"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&c)
	resp.Body.Close()
	if resp.StatusCode != 200 || c.Usage.CompletionTokens == 0 {
		t.Errorf("completion: %d %+v", resp.StatusCode, c)
	}
	srv.stop(t)
}

func TestServeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"serve", "--max-batch", "0"},
		{"serve", "--max-queue", "-1"},
		{"serve", "--timeout", "-1s"},
		{"serve", "--max-body", "0"},
		{"serve", "extra"},
	} {
		_, _, code := gpt2(t, "", args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	gpt2Fails(t, "", []string{"serve", "--model", fixture.HFDir(t), "--addr", "256.0.0.1:99999"}, "serve")
}
