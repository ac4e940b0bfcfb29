// Package progress reports how far a long fleet operation has come: a
// progress bar (github.com/schollz/progressbar) when the output is a
// terminal, and one plain line per step otherwise, so that logs of CI jobs
// and pipes stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Reporter counts finished steps out of a total. It is safe for concurrent
// use.
type Reporter struct {
	mu    sync.Mutex
	w     io.Writer
	what  string
	total int
	done  int
	bar   *progressbar.ProgressBar // nil when w is not a terminal
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// New starts reporting on w the progress of total steps of what (for
// example "instances" or "nodes").
func New(w io.Writer, total int, what string) *Reporter {
	r := &Reporter{w: w, what: what, total: total}
	if IsTerminal(w) {
		r.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(what),
			progressbar.OptionShowCount(),
			progressbar.OptionSetWidth(30),
			progressbar.OptionClearOnFinish(),
		)
	}
	return r
}

// Step records n more finished steps; msg, if not empty, says what
// finished ("vm-3 succeeded").
func (r *Reporter) Step(n int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done += n
	r.print(msg)
	if r.bar != nil {
		_ = r.bar.Add(n)
	}
}

// Set records that done steps have finished in total (for progress read
// from a server, such as the percentage of an instance refresh).
func (r *Reporter) Set(done int, msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if done == r.done && msg == "" {
		return
	}
	r.done = done
	r.print(msg)
	if r.bar != nil {
		_ = r.bar.Set(done)
	}
}

// Note prints a line without counting a step.
func (r *Reporter) Note(msg string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.print(msg)
}

func (r *Reporter) print(msg string) {
	if msg == "" && r.bar != nil {
		return
	}
	if r.bar != nil {
		// Print above the bar: clear the line, write, and let the bar redraw.
		_ = r.bar.Clear()
		fmt.Fprintln(r.w, msg)
		_ = r.bar.RenderBlank()
		return
	}
	if msg == "" {
		fmt.Fprintf(r.w, "%d/%d %s\n", r.done, r.total, r.what)
		return
	}
	fmt.Fprintf(r.w, "[%d/%d %s] %s\n", r.done, r.total, r.what, msg)
}

// Done ends the report.
func (r *Reporter) Done() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bar != nil {
		_ = r.bar.Finish()
	}
}
