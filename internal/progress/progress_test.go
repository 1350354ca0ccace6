package progress

import (
	"strings"
	"testing"
	"time"
)

func TestReporterNotTerminal(t *testing.T) {
	var b strings.Builder
	r := New(&b, time.Hour)
	r.Update("step %d", 1) // the first report is printed at once
	r.Update("step %d", 2) // then held back until the interval passes
	r.Update("step %d", 3)
	r.Print("note")
	r.Done() // and the last state is printed at the end
	if got, want := b.String(), "step 1\nnote\nstep 3\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
}

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		-1: "?", 0: "0s", 59 * time.Second: "59s", 61 * time.Second: "1m01s", 2*time.Hour + 3*time.Minute: "2h03m",
	} {
		if got := Duration(d); got != want {
			t.Errorf("Duration(%v) = %q, want %q", d, got, want)
		}
	}
}
