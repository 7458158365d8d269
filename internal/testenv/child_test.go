package testenv

import (
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// needShell returns sh, for tests that run a real child program: they run
// on Linux (natively and under qemu-user, whose kernel starts the host's
// sh), not under Wine.
func needShell(t *testing.T) string {
	t.Helper()
	if !HostExec() {
		t.Skipf("runs sh as the child program: not under %s/%s (Wine cannot start it); the native leg runs it", runtime.GOOS, runtime.GOARCH)
	}
	return NeedTool(t, "sh")
}

// hangGuard bounds a wait that would otherwise hang a broken test; it is
// far from anything the test waits for, so it never decides a result.
const hangGuard = 30 * time.Second

func TestStartLinesDeliversWaitsAndCleansUp(t *testing.T) {
	sh := needShell(t)
	var cmd *exec.Cmd
	var lines *Lines
	t.Run("child", func(t *testing.T) {
		cmd = exec.Command(sh, "-c", "echo a; echo b; echo ready; sleep 30")
		lines = StartLines(t, cmd, 4, BlockWhenFull)
		for _, want := range []string{"a", "b"} {
			got, ok := lines.Next(t, time.Now().Add(hangGuard))
			require.True(t, ok)
			require.Equal(t, want, got)
		}
		require.Equal(t, "ready", lines.WaitFor(t, time.Now().Add(hangGuard), `"ready"`, InARow("ready", 1)))

		// The child sleeps 30 s without printing: Next's deadline passes
		// and it fails the test, naming the program.
		f := runFake(t, func(tb testing.TB) { lines.Next(tb, time.Now().Add(50*time.Millisecond)) })
		require.True(t, f.failed)
		require.Contains(t, f.msg, "no line from sh (pid ")
		f = runFake(t, func(tb testing.TB) {
			lines.WaitFor(tb, time.Now().Add(50*time.Millisecond), `"never"`, func(string) bool { return false })
		})
		require.True(t, f.failed)
		require.Contains(t, f.msg, `no "never" from sh (pid `)
		require.Nil(t, cmd.ProcessState, "the child still runs until Cleanup")
	})
	// The subtest's Cleanup killed the child (well before its sleep ends)
	// and waited for it: its output ended.
	require.NotNil(t, cmd.ProcessState, "Cleanup waited for the child")
	require.False(t, cmd.ProcessState.Success(), "killed, not exited: %v", cmd.ProcessState)
	_, ok := lines.Next(t, time.Now().Add(hangGuard))
	require.False(t, ok, "the output ends with the child")
}

func TestWaitForFailsWhenTheOutputEnds(t *testing.T) {
	sh := needShell(t)
	lines := StartLines(t, exec.Command(sh, "-c", "echo a"), 4, BlockWhenFull)
	f := runFake(t, func(tb testing.TB) {
		lines.WaitFor(tb, time.Now().Add(hangGuard), `"b"`, func(l string) bool { return l == "b" })
	})
	require.True(t, f.failed)
	require.Contains(t, f.msg, `the output of sh (pid `)
	require.Contains(t, f.msg, `ended while waiting for "b"`)
}

func TestStartLinesFailsWhenTheProgramCannotStart(t *testing.T) {
	f := runFake(t, func(tb testing.TB) {
		StartLines(tb, exec.Command("/nonexistent/hotpatch-no-such-program"), 1, BlockWhenFull)
	})
	require.True(t, f.failed)
	require.Contains(t, f.msg, "testenv.StartLines: ")
}

// manyLines is far more output than a scanner holds (64 KiB at most), so
// that a reader that blocked on a full channel would stop the writer.
func manyLines(w *io.PipeWriter, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < n && err == nil; i++ {
			_, err = fmt.Fprintf(w, "%d\n", i)
		}
		done <- err
		w.Close()
	}()
	return done
}

func TestReadLinesWhenFull(t *testing.T) {
	const n = 100000
	t.Run("block", func(t *testing.T) {
		r, w := io.Pipe()
		lines := ReadLines(r, 1, BlockWhenFull)
		done := manyLines(w, n)
		for i := 0; i < n; i++ {
			got, ok := lines.Next(t, time.Now().Add(hangGuard))
			require.True(t, ok)
			require.Equal(t, fmt.Sprint(i), got, "no line lost or reordered")
		}
		require.NoError(t, <-done)
		_, ok := lines.Next(t, time.Now().Add(hangGuard))
		require.False(t, ok)
	})
	t.Run("drop", func(t *testing.T) {
		r, w := io.Pipe()
		lines := ReadLines(r, 1, DropWhenFull)
		done := manyLines(w, n)
		// Nobody reads until the writer is done: it finishes only
		// because full-buffer lines are dropped.
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(hangGuard):
			t.Fatal("the writer blocked: lines were not dropped")
		}
		var got []string
		for l := range lines.Chan() {
			got = append(got, l)
		}
		require.NotEmpty(t, got)
		require.Equal(t, "0", got[0], "the first line found room")
		require.Less(t, len(got), n, "lines were dropped")
	})
}

func TestInARow(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		lines string
		at    int // index of the line that matches; -1: none
	}{
		{"first", 1, "x", 0},
		{"run", 3, "x x y x x x y", 5},
		{"broken", 2, "x y x y", -1},
		{"below one counts as one", 0, "y x", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			match := InARow("x", tc.n)
			at := -1
			for i, l := range strings.Fields(tc.lines) {
				if match(l) {
					at = i
					break
				}
			}
			require.Equal(t, tc.at, at)
		})
	}
}
