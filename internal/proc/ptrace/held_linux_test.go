//go:build linux && (amd64 || arm64)

package ptrace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// holder is another agent: this test binary run again (HOTPATCH_PTRACE_HOLD)
// holding the target until its stdin closes.
type holder struct {
	pid   int
	stdin io.WriteCloser
	lines *testenv.Lines
}

// startHolder runs the holder against target ("PID": Attach the whole
// process; "PID/TID": seize only that thread) and waits until it holds it.
func startHolder(t *testing.T, target string) *holder {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "HOTPATCH_PTRACE_HOLD="+target)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	lines := testenv.StartLines(t, cmd, 16, testenv.DropWhenFull)
	h := &holder{pid: cmd.Process.Pid, stdin: in, lines: lines}
	l := lines.WaitFor(t, time.Now().Add(time.Minute), `"attached"`, func(l string) bool {
		return l == "attached" || strings.HasPrefix(l, "FAIL")
	})
	require.Equal(t, "attached", l)
	return h
}

// release closes the holder's stdin: it detaches and exits.
func (h *holder) release(t *testing.T) {
	t.Helper()
	require.NoError(t, h.stdin.Close())
}

// hold runs in the holder process: hold target until stdin closes.
func hold(target string) error {
	pidStr, tidStr, one := strings.Cut(target, "/")
	pid, err := strconv.Atoi(pidStr)
	if err != nil {
		return err
	}
	if !one {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := Attach(ctx, pid, Options{})
		if err != nil {
			return err
		}
		fmt.Println("attached")
		_, _ = io.Copy(io.Discard, os.Stdin)
		return p.Close()
	}
	tid, err := strconv.Atoi(tidStr)
	if err != nil {
		return err
	}
	// One thread only, seized from this locked thread, which never
	// waits for it (the fixture's workers raise no ptrace events). Exiting
	// releases it.
	runtime.LockOSThread()
	if err := seize(tid); err != nil {
		return fmt.Errorf("seize %d: %w", tid, err)
	}
	fmt.Println("attached")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// holderComm is the command name the kernel shows for the holder (this
// test binary: at most 15 bytes of its file name).
func holderComm(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	require.NoError(t, err)
	return strings.TrimSpace(string(b))
}

// TestHeldByAnotherAgent: while another process is attached, Attach is
// refused as held (not as a permission problem), naming the holder's pid
// and command; it waits for the holder when given time, and attaches as
// soon as the holder lets go.
func TestHeldByAnotherAgent(t *testing.T) {
	c := startChild(t, 2, "loop")
	h := startHolder(t, strconv.Itoa(c.pid))
	comm := holderComm(t, h.pid)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := Attach(ctx, c.pid, Options{})
	cancel()
	require.ErrorIs(t, err, proc.ErrHeld)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, proc.ErrPermission)
	var held *proc.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, proc.HeldError{PID: c.pid, HolderPID: h.pid, Holder: comm, Lock: "ptrace", Err: context.DeadlineExceeded}, *held)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d (%s)", h.pid, comm))
	t.Logf("held: %v", err)

	// A waiting Attach: the holder is released only once Attach has been
	// refused and is backing off, so it provably waited.
	refused := make(chan struct{})
	var once bool
	testHookHeld = func(*proc.HeldError) {
		if !once {
			once = true
			close(refused)
		}
	}
	defer func() { testHookHeld = nil }()
	type result struct {
		p   *Process
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		p, err := Attach(ctx, c.pid, Options{})
		done <- result{p, err}
	}()
	<-refused
	h.release(t)
	r := <-done
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.p.Close() })
	_, err = r.p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, r.p.Resume())
	c.waitFor(t, "1", 0)
}

// TestHeldPartly: another tracer holds one worker thread only. Attach
// seizes the leader and the other threads, meets the held one, and must
// let go of everything it seized: afterwards only the held thread is
// traced, and nothing is left stopped.
func TestHeldPartly(t *testing.T) {
	c := startChild(t, 3, "loop")
	var worker int
	for tid := range taskStates(t, c.pid) {
		if tid != c.pid && (worker == 0 || tid > worker) {
			worker = tid // the newest: scanned after others were seized
		}
	}
	require.NotZero(t, worker)
	h := startHolder(t, fmt.Sprintf("%d/%d", c.pid, worker))

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := Attach(ctx, c.pid, Options{})
	cancel()
	var held *proc.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, h.pid, held.HolderPID)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
	// Refused on the worker, so after the leader was seized (it always is
	// first).
	require.Contains(t, err.Error(), fmt.Sprintf("(thread %d traced by thread", worker))
	for tid := range taskStates(t, c.pid) {
		tracer := tracerPid(c.pid, tid)
		if tid == worker {
			tgid, _ := threadProcess(tracer)
			require.Equal(t, h.pid, tgid, "the held thread stays the holder's")
			continue
		}
		require.Zero(t, tracer, "thread %d still traced after a refused Attach", tid)
	}
	eventuallyRunning(t, c.pid)
	c.waitSteady(t, "1", 6)

	h.release(t)
	p := attach(t, c)
	_, err = p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Resume())
}
