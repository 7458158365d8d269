package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/stretchr/testify/require"
)

func TestSummarizeFixtures(t *testing.T) {
	// Every committed v1 fixture: the summary names the functions the
	// fixture's source defines and counts what the image holds.
	for _, name := range []string{"c-v1-amd64.exe", "c-v1-arm64.exe", "c-v1-amd64.elf", "c-v1-arm64.elf"} {
		t.Run(name, func(t *testing.T) {
			path := testenv.Testdata(t, "bin", name)
			img, err := image.Open(path)
			require.NoError(t, err)
			var out bytes.Buffer
			summarize(&out, path, img, 0)
			s := out.String()
			require.Contains(t, s, fmt.Sprintf("%s %s", img.Format, img.Arch))
			require.Contains(t, s, fmt.Sprintf("  %d functions (found by: ", len(img.Functions)))
			for _, fn := range []string{"fixture_run", "put_int", "os_write"} {
				require.Contains(t, s, " "+fn+" ", "function %s from testdata/c is listed", fn)
			}
			// n=0 lists every function: one line each.
			require.Equal(t, len(img.Functions), strings.Count(s, " found by "))
		})
	}
}

func TestCommandLine(t *testing.T) {
	bin := testenv.GoBuild(t, "examples/inspect", "linux", "amd64")
	ctx := context.Background()

	out, err := testenv.Command(ctx, t, bin, "-n", "2", testenv.Testdata(t, "bin", "c-v1-amd64.exe")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "PE amd64")
	require.Contains(t, string(out), "more\n")

	// A file that is not an executable: one line on stderr, exit status 1.
	bad := filepath.Join(t.TempDir(), "not-an-image")
	require.NoError(t, os.WriteFile(bad, []byte("hello, world"), 0o644))
	cmd := testenv.Command(ctx, t, bin, bad)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "want an exit error, got %v", err)
	require.Equal(t, 1, ee.ExitCode())
	require.Empty(t, stdout.String())
	require.Equal(t, 1, strings.Count(stderr.String(), "\n"), "%q", stderr.String())
	require.True(t, strings.HasPrefix(stderr.String(), "inspect: "), "%q", stderr.String())

	// No argument: usage, exit status 2.
	err = testenv.Command(ctx, t, bin).Run()
	require.True(t, errors.As(err, &ee))
	require.Equal(t, 2, ee.ExitCode())
}
