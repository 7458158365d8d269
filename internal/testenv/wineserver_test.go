package testenv

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWineServerDoesNotHoldTestPipes: a program whose output a test reads
// must not hand its stdout pipe to the wineserver it happens to start, or
// Wait blocks until every other Wine program of the prefix has ended. The
// test uses a prefix of its own, so no other test's server is disturbed.
// WaitDelay turns a held pipe into exec.ErrWaitDelay instead of a long wait.
func TestWineServerDoesNotHoldTestPipes(t *testing.T) {
	if Emulated() {
		t.Skip("starts Wine programs from the host; the native leg runs it")
	}
	wine := NeedTool(t, "wine", "wine64")
	NeedTool(t, "wineserver")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t.Setenv("HOTPATCH_WINEPREFIX", filepath.Join(t.TempDir(), "wine"))
	env, err := PrepareWine(ctx, Root(t), io.Discard)
	require.NoError(t, err)
	t.Cleanup(func() {
		kill := exec.Command("wineserver", "-k")
		kill.Env = env
		_ = kill.Run() // ends the prefix's server and every program in it
	})
	exe := filepath.Join(Root(t), "testdata", "bin", "c-v1-amd64.exe")

	detachWineServer(ctx, t, env, wine)

	// The reader starts first; a second, silent Wine program keeps the
	// prefix's server busy well past the reader's end.
	reader := exec.CommandContext(ctx, wine, exe, "20", "100")
	reader.Env = env
	reader.WaitDelay = time.Second
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() { out, err := reader.Output(); done <- result{out, err} }()
	time.Sleep(500 * time.Millisecond)
	other := exec.CommandContext(ctx, wine, exe, "300", "100")
	other.Env = env
	require.NoError(t, other.Start())
	defer func() { _ = other.Process.Kill(); _ = other.Wait() }()

	r := <-done
	require.False(t, errors.Is(r.err, exec.ErrWaitDelay), "the reader's stdout pipe outlived it: a Wine server process holds it")
	require.NoError(t, r.err)
	require.Contains(t, string(r.out), "n=19 ")
}
