// Package progress prints a one-line progress report on a terminal,
// rewritten in place, or every few seconds as separate lines when the
// output is a file or a pipe.
package progress

import (
	"fmt"
	"io"
	"os"
	"time"
)

// Reporter throttles and prints progress lines.
type Reporter struct {
	w        io.Writer
	term     bool
	interval time.Duration
	last     time.Time
	pending  string // the latest line not yet printed
	shown    bool   // a line is on the terminal, so Done must end it
}

// New returns a Reporter writing to w. Lines are rewritten in place when w
// is a terminal, and otherwise printed at most once per interval.
func New(w io.Writer, interval time.Duration) *Reporter {
	r := &Reporter{w: w, interval: interval, term: IsTerminal(w)}
	if r.term {
		r.interval = 100 * time.Millisecond
	}
	return r
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// Terminal reports whether the output is a terminal.
func (r *Reporter) Terminal() bool { return r.term }

// Update reports the current state; it may print nothing.
func (r *Reporter) Update(format string, args ...any) {
	if r == nil || r.w == nil {
		return
	}
	r.pending = fmt.Sprintf(format, args...)
	if now := time.Now(); now.Sub(r.last) >= r.interval {
		r.last = now
		r.flush()
	}
}

// Print prints a line of its own, above the progress line on a terminal.
func (r *Reporter) Print(format string, args ...any) {
	if r == nil || r.w == nil {
		return
	}
	if r.term && r.shown {
		fmt.Fprint(r.w, "\r\x1b[K")
		r.shown = false
	}
	fmt.Fprintf(r.w, format+"\n", args...)
	if r.term && r.pending != "" {
		r.flush()
	}
}

func (r *Reporter) flush() {
	if r.term {
		fmt.Fprintf(r.w, "\r%s\x1b[K", r.pending)
		r.shown = true
		return
	}
	fmt.Fprintln(r.w, r.pending)
	r.pending = ""
}

// Done prints the last state, if it was held back, and ends the line.
func (r *Reporter) Done() {
	if r == nil || r.w == nil {
		return
	}
	if r.term {
		if r.pending != "" {
			r.flush()
		}
		if r.shown {
			fmt.Fprintln(r.w)
		}
		r.shown = false
	} else if r.pending != "" {
		r.flush()
	}
	r.pending = ""
}

// Duration formats an estimate of time left compactly.
func Duration(d time.Duration) string {
	if d < 0 {
		return "?"
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return fmt.Sprintf("%dh%02dm", h, m)
	}
	if m > 0 {
		return fmt.Sprintf("%dm%02ds", m, s)
	}
	return fmt.Sprintf("%ds", s)
}
