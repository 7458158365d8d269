package main

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch"
)

// want is the whole output: the original result, the fix's while
// redirected, the original again with the entry's bytes as they were.
const want = `before:      greeting() = "hello from v1"
redirected:  greeting() = "hello from v2" (1 function redirected)
rolled back: greeting() = "hello from v1" (entry bytes restored: true)
`

func needSelf(t *testing.T) {
	t.Helper()
	if _, err := patch.Self(); err != nil {
		require.ErrorIs(t, err, patch.ErrUnsupported)
		t.Skipf("patch.Self: %v on %s/%s", err, runtime.GOOS, runtime.GOARCH)
	}
}

// TestRun runs the demonstration inside the test process: the test binary
// patches itself, and the results come from calling the real function.
func TestRun(t *testing.T) {
	needSelf(t)
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), &out))
	require.Equal(t, want, out.String())
	// The function is back to the original for every later caller.
	require.Equal(t, "hello from v1", greeting())
}

// TestProgram builds the example and runs it as a user would.
func TestProgram(t *testing.T) {
	needSelf(t)
	bin := testenv.GoBuild(t, "examples/selfpatch", runtime.GOOS, runtime.GOARCH)
	var stdout, stderr bytes.Buffer
	cmd := testenv.Command(context.Background(), t, bin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr: %s", stderr.String())
	require.Equal(t, want, stdout.String())
	require.Empty(t, stderr.String())
}
