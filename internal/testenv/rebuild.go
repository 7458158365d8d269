package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// RequireRebuild runs dir/build.sh with a fresh output directory as its
// argument and fails t unless each of files comes out byte for byte as it
// is committed in dir: binaries committed beside their sources stay what
// their script makes from them. The tools the script needs are the
// caller's to check first (NeedHostTool).
func RequireRebuild(t testing.TB, dir string, files ...string) {
	t.Helper()
	out := t.TempDir()
	script := filepath.Join(dir, "build.sh")
	if msg, err := exec.Command("sh", script, out).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", script, err, msg)
	}
	for _, name := range files {
		want, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatalf("%s did not write %s: %v", script, name, err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("%s differs from a rebuild (%d bytes, rebuilt %d): run %s and commit it (or a compiler changed)", filepath.Join(dir, name), len(want), len(got), script)
		}
	}
}
