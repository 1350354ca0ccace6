package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The CLI tests run the command line in a child process: this test binary,
// which acts as gpt2 when runAsGPT2 is set in its environment. That checks
// what users see (stdout, stderr, exit status) without building a separate
// binary.
const runAsGPT2 = "GPT2_TEST_RUN_AS_GPT2"

func TestMain(m *testing.M) {
	if os.Getenv(runAsGPT2) == "1" {
		os.Exit(run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// gpt2 runs gpt2 with args and stdin, returning its stdout, stderr and
// exit status.
func gpt2(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsGPT2+"=1")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("run gpt2 %q: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// gpt2OK runs gpt2 and fails the test unless it succeeds.
func gpt2OK(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	out, errOut, code := gpt2(t, stdin, args...)
	if code != 0 {
		t.Fatalf("gpt2 %q: exit %d, stderr %q", args, code, errOut)
	}
	return out
}

// gpt2Fails runs gpt2, expects it to fail with a one-line message on
// stderr (no stack trace) that contains each of want, and returns it.
func gpt2Fails(t *testing.T, stdin string, args []string, want ...string) string {
	t.Helper()
	out, errOut, code := gpt2(t, stdin, args...)
	if code == 0 {
		t.Fatalf("gpt2 %q succeeded (stdout %q); want an error", args, out)
	}
	if strings.Contains(errOut, "goroutine") || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "gpt2: ") {
		t.Errorf("gpt2 %q: stderr %q, want one line starting \"gpt2: \"", args, errOut)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("gpt2 %q: stderr %q does not mention %q", args, errOut, w)
		}
	}
	return errOut
}
