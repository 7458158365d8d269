package testenv

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
)

// CacheDir returns the directory where testenv keeps what it builds for
// tests (Go fixtures, the Wine shim, the Wine prefix): $HOTPATCH_CACHE when
// set, else hotpatch/ under the user's cache directory. It outlives test
// runs on purpose so repeated runs do not rebuild or re-initialise Wine.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir, err := cacheDir()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return dir
}

// CacheRoot is CacheDir for code that has no testing.TB (the winesetup
// command): it creates the directory and returns it.
func CacheRoot() (string, error) { return cacheDir() }

func cacheDir() (string, error) {
	dir := os.Getenv("HOTPATCH_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			// No HOME (rare in CI): a per-machine temp location still
			// works, it is only a cache.
			base = os.TempDir()
		}
		dir = filepath.Join(base, "hotpatch")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return dir, nil
}

// HostExec reports whether this test binary can start programs built for the
// host (the go tool, compilers). That holds natively and under
// qemu-user (the kernel runs the host's x86-64 programs directly), not under
// Wine, whose processes cannot start Linux ELF programs.
func HostExec() bool { return runtime.GOOS == "linux" }

var (
	goBuildMu   sync.Mutex
	goBuildMemo = map[string]string{}
)

// GoBuild builds the Go main package in pkgDir (absolute, or relative to the
// module root, e.g. "testdata/go/hello") for goos/goarch and returns the path
// of the program. The build is deterministic (-trimpath, -buildvcs=false,
// CGO_ENABLED=0, GOFLAGS cleared) and cached under CacheDir by a hash of every
// input: the go version, goos, goarch, extraArgs (passed to go build before
// the package), go.mod, go.sum and the files of every non-standard package
// the program imports. Parallel test processes may build the same program:
// each writes a temporary file and renames it into place, so readers only
// ever see a complete binary.
//
// A build failure fails the test. Where the go tool cannot be started (a
// test binary under Wine) the test skips, or fails under CI=true when the
// tool is missing on a host that should have it.
func GoBuild(t testing.TB, pkgDir, goos, goarch string, extraArgs ...string) string {
	t.Helper()
	if !HostExec() {
		t.Skipf("needs host tool go: this leg runs under emulation (%s/%s); the native leg runs it", runtime.GOOS, runtime.GOARCH)
	}
	goTool := NeedTool(t, "go")
	root := Root(t)
	if !filepath.IsAbs(pkgDir) {
		pkgDir = filepath.Join(root, pkgDir)
	}
	pkgDir = filepath.Clean(pkgDir)

	memoKey := strings.Join(append([]string{pkgDir, goos, goarch}, extraArgs...), "\x00")
	goBuildMu.Lock()
	defer goBuildMu.Unlock()
	if p, ok := goBuildMemo[memoKey]; ok {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}

	env := goBuildEnv(goos, goarch)
	key, err := goBuildKey(goTool, root, pkgDir, goos, goarch, env, extraArgs)
	if err != nil {
		t.Fatalf("testenv.GoBuild %s: %v", pkgDir, err)
	}
	name := filepath.Base(pkgDir)
	if goos == "windows" {
		name += ".exe"
	}
	cache, err := cacheDir()
	if err != nil {
		t.Fatalf("testenv.GoBuild: %v", err)
	}
	dir := filepath.Join(cache, "gobuild", key[:24])
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		goBuildMemo[memoKey] = out
		return out
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("testenv.GoBuild: %v", err)
	}
	tmp, err := os.CreateTemp(dir, ".build-*")
	if err != nil {
		t.Fatalf("testenv.GoBuild: %v", err)
	}
	tmpName := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpName) // no-op after a successful rename

	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-o", tmpName}, extraArgs...)
	args = append(args, pkgDir)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = root
	cmd.Env = env
	if outp, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv.GoBuild: go %s: %v\n%s", strings.Join(args, " "), err, outp)
	}
	if err := os.Rename(tmpName, out); err != nil {
		t.Fatalf("testenv.GoBuild: %v", err)
	}
	goBuildMemo[memoKey] = out
	return out
}

// goBuildEnv is the environment of every fixture build: the caller's, minus
// whatever would make the output depend on the machine or the caller.
func goBuildEnv(goos, goarch string) []string {
	env := filterEnv(os.Environ(), "GOOS", "GOARCH", "CGO_ENABLED", "GOFLAGS", "GOAMD64", "GOARM64", "GOEXPERIMENT")
	return append(env, "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=")
}

// goBuildKey hashes everything a build's output depends on. The package list
// comes from the go tool itself (go list -deps for the target platform), so
// a change in a module package the fixture imports also changes the key.
func goBuildKey(goTool, root, pkgDir, goos, goarch string, env, extraArgs []string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "hotpatch-gobuild-v1\x00%s\x00%s\x00%s\x00%q\x00", runtime.Version(), goos, goarch, extraArgs)
	for _, f := range []string{"go.mod", "go.sum"} {
		if err := hashFile(h, filepath.Join(root, f)); err != nil && !os.IsNotExist(err) {
			return "", err
		}
	}
	cmd := exec.Command(goTool, "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", pkgDir)
	cmd.Dir = root
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list %s: %v\n%s", pkgDir, err, stderr.String())
	}
	// The go tool that builds may differ from the one that built this test.
	ver, err := exec.Command(goTool, "env", "GOVERSION").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOVERSION: %v", err)
	}
	h.Write(ver)
	var dirs []string
	for _, d := range strings.Split(string(out), "\n") {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	for _, d := range dirs {
		// Name module directories relative to the root so that two clones
		// of the repository share cache entries.
		name := d
		if rel, err := filepath.Rel(root, d); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		}
		fmt.Fprintf(h, "dir\x00%s\x00", filepath.ToSlash(name))
		if err := hashDir(h, d); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashDir hashes the names and contents of the regular files directly in
// dir (a Go package directory: sources, assembly, embedded files).
func hashDir(h io.Writer, dir string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		fmt.Fprintf(h, "%s\x00", e.Name())
		if err := hashFile(h, filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(h io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(h, f)
	fmt.Fprintf(h, "\x00%d\x00", n)
	return err
}

// filterEnv returns env without the variables named in drop.
func filterEnv(env []string, drop ...string) []string {
	out := make([]string, 0, len(env))
next:
	for _, kv := range env {
		for _, d := range drop {
			if strings.HasPrefix(kv, d+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
