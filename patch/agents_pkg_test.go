//go:build (linux && amd64) || (windows && amd64)

package patch_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch"
)

// Two agents in different processes on one target: a holder process keeps
// the target (Linux: attached; Windows: its lock) until told to let go,
// and agent processes apply the same package at once. Both are this test
// binary run again (TestHelperHolder, TestHelperApply).

// holderProc is another agent process holding the target.
type holderProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *testenv.Lines
}

// startHolder runs TestHelperHolder against pid and returns once it holds
// the target.
func startHolder(t *testing.T, pid int) *holderProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHolder$", "-test.v")
	cmd.Env = append(os.Environ(), "HOTPATCH_HOLD_PID="+strconv.Itoa(pid))
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	lines := testenv.StartLines(t, cmd, 64, testenv.DropWhenFull)
	h := &holderProc{cmd: cmd, stdin: in, lines: lines}
	l := lines.WaitFor(t, time.Now().Add(2*time.Minute), `"holding"`, func(l string) bool {
		return l == "holding" || strings.Contains(l, "FAIL")
	})
	require.Equal(t, "holding", l)
	return h
}

// release tells the holder to let go (it closes the target and exits) and
// waits for it to end.
func (h *holderProc) release(t *testing.T) {
	t.Helper()
	require.NoError(t, h.stdin.Close())
	h.lines.WaitFor(t, time.Now().Add(2*time.Minute), `"released"`, func(l string) bool { return l == "released" })
}

// TestHelperHolder is the holder process: it holds the target of
// HOTPATCH_HOLD_PID (holdTarget), prints "holding", and lets go when its
// stdin closes.
func TestHelperHolder(t *testing.T) {
	pidStr := os.Getenv("HOTPATCH_HOLD_PID")
	if pidStr == "" {
		t.Skip("run by the concurrent-agent tests as a separate process")
	}
	pid, err := strconv.Atoi(pidStr)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	release, err := holdTarget(ctx, pid)
	require.NoError(t, err)
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	require.NoError(t, release())
	fmt.Println("released")
}

// TestHelperApply is an agent process applying the package file
// HOTPATCH_APPLY_PKG to process HOTPATCH_APPLY_PID. It prints "applied
// sequence N", or "refused: out of sequence: ..." for a package some other
// agent applied first; anything else fails.
func TestHelperApply(t *testing.T) {
	pid, p := agentFromEnv(t, "HOTPATCH_APPLY", "run by the concurrent-agent tests as a separate process")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tgt, err := openAgent(ctx, pid)
	require.NoError(t, err)
	defer tgt.Close()
	if os.Getenv("HOTPATCH_APPLY_BARRIER") != "" {
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin) // every agent is ready
	}
	ap, err := patch.Apply(ctx, tgt, p, patch.ApplyOptions{})
	switch {
	case err == nil:
		fmt.Printf("applied sequence %d\n", ap.Record.Sequence)
	case errors.Is(err, patch.ErrSequence):
		fmt.Printf("refused: out of sequence: %v\n", err)
	default:
		require.NoError(t, err)
	}
}

// applyConcurrently starts n agent processes applying fp to pid at once
// and returns what each reported. With barrier, each agent opens the
// target, says "ready" and waits until every one is ready before it
// applies: they then read the applied set as close together as processes
// can (for back-ends whose open does not exclude, Windows; on Linux the
// attach itself makes the later agents wait, so there is no barrier).
func applyConcurrently(t *testing.T, pid int, fp *fixturePackage, n int, barrier bool) []string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fix.hpk")
	require.NoError(t, os.WriteFile(file, fp.data, 0o600))
	type agent struct {
		stdin io.WriteCloser
		lines *testenv.Lines
	}
	var agents []agent
	for range n {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperApply$", "-test.v")
		cmd.Env = append(os.Environ(), agentEnv("HOTPATCH_APPLY", pid, file, fp.pub)...)
		if barrier {
			cmd.Env = append(cmd.Env, "HOTPATCH_APPLY_BARRIER=1")
		}
		in, err := cmd.StdinPipe()
		require.NoError(t, err)
		// Every agent is started before any is waited for: they race.
		agents = append(agents, agent{in, testenv.StartLines(t, cmd, 256, testenv.BlockWhenFull)})
	}
	deadline := time.Now().Add(3 * time.Minute)
	if barrier {
		for _, a := range agents {
			a.lines.WaitFor(t, deadline, `"ready"`, func(l string) bool {
				require.NotContains(t, l, "FAIL")
				return l == "ready"
			})
		}
	}
	for _, a := range agents {
		require.NoError(t, a.stdin.Close())
	}
	var got []string
	for _, a := range agents {
		var out []string
		for {
			l, ok := a.lines.Next(t, deadline)
			if !ok {
				break
			}
			out = append(out, l)
		}
		var line string
		for _, l := range out {
			require.NotContains(t, l, "FAIL", "agent said: %q", out)
			if strings.HasPrefix(l, "applied ") || strings.HasPrefix(l, "refused: ") {
				line = l
			}
		}
		require.NotEmpty(t, line, "agent said: %q", out)
		got = append(got, line)
	}
	return got
}

// requireOneApplied checks the agents' reports: exactly one applied, every
// other one was refused as out of sequence.
func requireOneApplied(t *testing.T, got []string) {
	t.Helper()
	applied := 0
	for _, l := range got {
		if strings.HasPrefix(l, "applied ") {
			applied++
			require.Equal(t, "applied sequence 1", l)
			continue
		}
		require.Contains(t, l, "refused: out of sequence")
		require.Contains(t, l, "package 1 requires 0 applied, the process has 1")
	}
	require.Equal(t, 1, applied, "%q", got)
}
