package testenv

import (
	"bufio"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// WhenFull says what Lines does with a line its buffer has no room for.
type WhenFull int

const (
	// BlockWhenFull waits until the test reads: no line is lost, and a
	// program that prints faster than the test reads eventually blocks on
	// its stdout. For tests that check every line.
	BlockWhenFull WhenFull = iota
	// DropWhenFull throws the line away and keeps the pipe drained, so a
	// program the test only samples (a busy fixture printing in a loop)
	// never blocks on a write, which would stall it inside code under test.
	DropWhenFull
)

// Lines is the standard output of a program a test runs, line by line,
// read by a goroutine into a buffered channel that is closed when the
// output ends (the program exited or closed its stdout).
type Lines struct {
	ch   chan string
	name string // for failure messages
}

// StartLines connects cmd's stdout, starts it, and reads its output into a
// channel of buffer lines. Its Cleanup, registered now (before any the caller
// registers afterwards, so it runs after theirs), kills the program and
// waits for it: a test that traces the program registers the tracer's Close
// later, so it detaches before this waits (a tracer must not wait for its
// tracee). A caller that wants the program's stdin calls cmd.StdinPipe
// before StartLines. Failing to start the program fails the test.
func StartLines(t testing.TB, cmd *exec.Cmd, buffer int, full WhenFull) *Lines {
	t.Helper()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("testenv.StartLines: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testenv.StartLines: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	l := ReadLines(out, buffer, full)
	l.name = fmt.Sprintf("%s (pid %d)", filepath.Base(cmd.Path), cmd.Process.Pid)
	return l
}

// ReadLines reads r line by line into a channel of buffer lines, for a
// program the caller started and cleans up itself.
func ReadLines(r io.Reader, buffer int, full WhenFull) *Lines {
	l := &Lines{ch: make(chan string, buffer), name: "the program"}
	go func() {
		defer close(l.ch)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if full == BlockWhenFull {
				l.ch <- sc.Text()
				continue
			}
			select {
			case l.ch <- sc.Text():
			default: // nobody listening: drop, keep the pipe drained
			}
		}
	}()
	return l
}

// Chan is the channel of lines, for a caller that reads without a
// deadline or without waiting (select with default).
func (l *Lines) Chan() <-chan string { return l.ch }

// Next returns the next line; ok is false when the output has ended. No line
// by deadline fails the test: the deadline is a hang guard, not a timing
// assertion.
func (l *Lines) Next(t testing.TB, deadline time.Time) (line string, ok bool) {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case line, ok = <-l.ch:
		return line, ok
	case <-timer.C:
		t.Fatalf("testenv: no line from %s by %s", l.name, deadline.Format("15:04:05.000"))
		return "", false
	}
}

// WaitFor reads lines until one satisfies match, and returns it. The output
// ending first, or deadline passing (a hang guard), fails the test with
// what, the description of the awaited line. match may keep state (count a
// run of lines) and may fail the test itself on a line that must not come.
func (l *Lines) WaitFor(t testing.TB, deadline time.Time, what string, match func(string) bool) string {
	t.Helper()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		select {
		case line, ok := <-l.ch:
			if !ok {
				t.Fatalf("testenv: the output of %s ended while waiting for %s", l.name, what)
				return ""
			}
			if match(line) {
				return line
			}
		case <-timer.C:
			t.Fatalf("testenv: no %s from %s by %s", what, l.name, deadline.Format("15:04:05.000"))
			return ""
		}
	}
}

// InARow is a WaitFor match that holds at the n-th line in a row equal to
// want (n below 1 counts as 1): for a program whose earlier output, printed
// before the change the test waits for, may still be buffered.
func InARow(want string, n int) func(string) bool {
	run := 0
	return func(line string) bool {
		if line == want {
			run++
		} else {
			run = 0
		}
		return run >= max(n, 1)
	}
}
