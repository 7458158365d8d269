//go:build windows && amd64

package winproc

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// child is a running testdata/child.exe.
type child struct {
	cmd   *exec.Cmd
	value uint64 // address of value()

	mu    sync.Mutex
	cond  *sync.Cond
	last  string // latest "r=" line
	lines int
	done  bool
}

// startChild runs testdata/child.exe with n worker threads (and thread
// churn when churn is set); it is killed when the test ends.
func startChild(t testing.TB, n int, churn bool) *child {
	t.Helper()
	args := []string{strconv.Itoa(n)}
	if churn {
		args = append(args, "churn")
	}
	cmd := exec.Command(filepath.Join("testdata", "child.exe"), args...)
	stdin, err := cmd.StdinPipe() // closing it ends the child
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd}
	c.cond = sync.NewCond(&c.mu)
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	sc := bufio.NewScanner(out)
	require.True(t, sc.Scan(), "child printed nothing")
	hex, ok := strings.CutPrefix(sc.Text(), "value=")
	require.True(t, ok, "first line %q", sc.Text())
	c.value, err = strconv.ParseUint(hex, 16, 64)
	require.NoError(t, err)
	go func() {
		for sc.Scan() {
			c.mu.Lock()
			c.last = sc.Text()
			c.lines++
			c.cond.Broadcast()
			c.mu.Unlock()
		}
		c.mu.Lock()
		c.done = true
		c.cond.Broadcast()
		c.mu.Unlock()
	}()
	c.waitResult(t, 1) // every worker thread is running
	return c
}

// waitResult waits until the child reports that all its workers got want
// from value(), and fails after a generous bound (Wine can be slow; this is
// a hang guard, not a timing assertion).
func (c *child) waitResult(t testing.TB, want int) {
	t.Helper()
	line := fmt.Sprintf("r=%d", want)
	deadline := time.Now().Add(60 * time.Second)
	timer := time.AfterFunc(time.Until(deadline), func() { c.mu.Lock(); c.cond.Broadcast(); c.mu.Unlock() })
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.last != line {
		if c.done || time.Now().After(deadline) {
			t.Fatalf("child never printed %q (last %q after %d lines)", line, c.last, c.lines)
		}
		c.cond.Wait()
	}
}

// openChild starts a child and opens it.
func openChild(t testing.TB, n int, churn bool) (*child, *Process) {
	t.Helper()
	c := startChild(t, n, churn)
	p, err := Open(c.cmd.Process.Pid, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return c, p
}
