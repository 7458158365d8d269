package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// ToolMissingError says that a tool needed to prepare the environment is not
// on PATH. Test helpers turn it into Missing (skip, or fail under CI=true).
type ToolMissingError struct {
	Tool string // the command looked for, e.g. "wine"
	Why  string // what it was needed for
}

// Error names the missing tool and what needed it.
func (e *ToolMissingError) Error() string {
	return fmt.Sprintf("needs %s: not on PATH (%s)", e.Tool, e.Why)
}

// WineDLLOverrides makes Wine load our bcryptprimitives.dll (native) and
// never offer to install Mono or Gecko, which would wait for a click.
const WineDLLOverrides = "mscoree,mshtml=;bcryptprimitives=n"

// WinePrefixDir returns the dedicated Wine prefix the tests use:
// $HOTPATCH_WINEPREFIX when set, else wine/ under CacheDir. A dedicated
// prefix keeps the user's own ~/.wine untouched.
func WinePrefixDir() (string, error) {
	if p := os.Getenv("HOTPATCH_WINEPREFIX"); p != "" {
		return p, nil
	}
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "wine"), nil
}

// WineEnv returns env adjusted to run programs in the Wine prefix: WINEPREFIX,
// WINEDEBUG=-all (Wine's fixme lines would bury test output) and
// WineDLLOverrides. DISPLAY and WAYLAND_DISPLAY are removed so that nothing
// can open a window; console programs do not need one.
func WineEnv(env []string, prefix string) []string {
	env = filterEnv(env, "WINEPREFIX", "WINEDEBUG", "WINEDLLOVERRIDES", "DISPLAY", "WAYLAND_DISPLAY")
	return append(env, "WINEPREFIX="+prefix, "WINEDEBUG=-all", "WINEDLLOVERRIDES="+WineDLLOverrides)
}

var (
	wineMu  sync.Mutex
	wineEnv []string
)

// Wine prepares the Wine prefix (see PrepareWine) once per test process and
// returns the environment for running a PE under it: pass it as exec.Cmd.Env
// with "wine" as the program. Command does this for you. Missing wine or
// mingw skips the test naming the tool, or fails it under CI=true.
// In a test binary that itself runs on Windows (or under Wine) it returns
// the process environment unchanged.
func Wine(t testing.TB) []string {
	t.Helper()
	if runtime.GOOS == "windows" {
		return os.Environ()
	}
	wineMu.Lock()
	defer wineMu.Unlock()
	if wineEnv != nil {
		return wineEnv
	}
	env, err := PrepareWine(context.Background(), Root(t), io.Discard)
	var missing *ToolMissingError
	if errors.As(err, &missing) {
		Missing(t, missing.Tool, missing.Why)
	}
	if err != nil {
		t.Fatalf("testenv.Wine: %v", err)
	}
	wineEnv = env
	return env
}

// PrepareWine makes the Wine prefix ready to run Go programs and returns the
// environment to run them with. It is idempotent and safe to call from
// several processes at once (a file lock serialises them):
//   - initialises the prefix with `wine wineboot -i` when it does not exist;
//   - builds internal/testenv/winshim (under root) into CacheDir with
//     x86_64-w64-mingw32-gcc, keyed by the hash of its source, when not built;
//   - copies the shim into the prefix's system32 when it differs.
//
// Progress lines go to log.
func PrepareWine(ctx context.Context, root string, log io.Writer) ([]string, error) {
	wine, ok := LookTool("wine", "wine64")
	if !ok {
		return nil, &ToolMissingError{Tool: "wine", Why: "runs the windows/amd64 programs (make test installs wine64)"}
	}
	prefix, err := WinePrefixDir()
	if err != nil {
		return nil, err
	}
	cache, err := cacheDir()
	if err != nil {
		return nil, err
	}
	unlock, err := lockFile(filepath.Join(cache, "wine.lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	env := WineEnv(os.Environ(), prefix)
	if _, err := os.Stat(filepath.Join(prefix, "system.reg")); err != nil {
		fmt.Fprintf(log, "testenv: initialising Wine prefix %s\n", prefix)
		if err := os.MkdirAll(filepath.Dir(prefix), 0o755); err != nil {
			return nil, err
		}
		if err := runQuiet(ctx, env, wine, "wineboot", "-i"); err != nil {
			return nil, fmt.Errorf("wineboot -i in %s: %w", prefix, err)
		}
		// wineserver writes the registry when it exits: wait for it so
		// the prefix is complete before anyone else uses it.
		if ws, ok := LookTool("wineserver"); ok {
			if err := runQuiet(ctx, env, ws, "-w"); err != nil {
				return nil, fmt.Errorf("wineserver -w: %w", err)
			}
		}
		if _, err := os.Stat(filepath.Join(prefix, "system.reg")); err != nil {
			return nil, fmt.Errorf("wineboot did not create %s: %w", prefix, err)
		}
	}

	sys32 := filepath.Join(prefix, "drive_c", "windows", "system32")
	installed := filepath.Join(sys32, "bcryptprimitives.dll")
	built, err := buildWinShim(ctx, root, cache, log)
	if err != nil {
		var missing *ToolMissingError
		if errors.As(err, &missing) {
			// Without mingw a shim installed earlier still serves.
			if _, serr := os.Stat(installed); serr == nil {
				return env, nil
			}
		}
		return nil, err
	}
	want, err := os.ReadFile(built)
	if err != nil {
		return nil, err
	}
	if have, err := os.ReadFile(installed); err == nil && bytes.Equal(have, want) {
		return env, nil
	}
	fmt.Fprintf(log, "testenv: installing %s\n", installed)
	if err := writeFileAtomic(installed, want); err != nil {
		return nil, err
	}
	return env, nil
}

// WinShimSources are the files under the module root that make the
// bcryptprimitives shim.
var WinShimSources = []string{
	"internal/testenv/winshim/bcryptprimitives.c",
	"internal/testenv/winshim/bcryptprimitives.def",
}

// buildWinShim builds the shim DLL unless a build of the same sources is
// cached, and returns its path.
func buildWinShim(ctx context.Context, root, cache string, log io.Writer) (string, error) {
	h := sha256.New()
	srcs := make([]string, len(WinShimSources))
	for i, s := range WinShimSources {
		srcs[i] = filepath.Join(root, filepath.FromSlash(s))
		fmt.Fprintf(h, "%s\x00", s)
		if err := hashFile(h, srcs[i]); err != nil {
			return "", fmt.Errorf("winshim source: %w", err)
		}
	}
	key := hex.EncodeToString(h.Sum(nil))[:24]
	out := filepath.Join(cache, "winshim", key, "bcryptprimitives.dll")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	gcc, ok := LookTool("x86_64-w64-mingw32-gcc")
	if !ok {
		return "", &ToolMissingError{Tool: "x86_64-w64-mingw32-gcc", Why: "builds the bcryptprimitives shim Go programs need under Wine 8 (make test installs mingw-w64)"}
	}
	fmt.Fprintf(log, "testenv: building %s\n", out)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", err
	}
	tmp := out + fmt.Sprintf(".tmp%d", os.Getpid())
	defer os.Remove(tmp)
	// --no-insert-timestamp keeps the DLL byte-identical between builds.
	args := append([]string{"-shared", "-O2", "-s", "-Wl,--no-insert-timestamp", "-o", tmp}, srcs...)
	args = append(args, "-ladvapi32")
	cmd := exec.CommandContext(ctx, gcc, args...)
	if outp, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s %s: %v\n%s", gcc, strings.Join(args, " "), err, outp)
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	return out, nil
}

// runQuiet runs a Wine tool with no input and its output kept for the error
// message only; a hung tool is stopped after two minutes.
func runQuiet(ctx context.Context, env []string, prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v\n%s", err, out.String())
	}
	return nil
}

// writeFileAtomic replaces path with data so that a concurrent reader sees
// the old or the new file, never a partial one.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	// CreateTemp makes the file private; an installed DLL is world-readable.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// goDeleteatFallback is the line of Go's internal/syscall/windows
// (at_windows.go, Deleteat) that lists the NTSTATUS codes after which Go
// falls back to the older delete call. Wine 8 answers
// FileDispositionInformationEx with STATUS_NOT_IMPLEMENTED, which the list
// lacks, so os.RemoveAll and every t.TempDir cleanup fail under Wine with
// "Invalid function".
const goDeleteatFallback = "\tcase STATUS_INVALID_INFO_CLASS, "

// WineGoOverlay writes into dir a `go build -overlay` file that adds
// STATUS_NOT_IMPLEMENTED to that list in the toolchain at goroot, and returns
// its path. The windows leg of make test builds its test binaries with it.
// It returns "" and no error when the toolchain's source has no such line
// (a Go that changed the code; the leg then runs without an overlay, and
// TestTempDirCleanupWorks says whether that is still right).
func WineGoOverlay(goroot, dir string) (string, error) {
	src := filepath.Join(goroot, "src", "internal", "syscall", "windows", "at_windows.go")
	data, err := os.ReadFile(src)
	if err != nil {
		return "", fmt.Errorf("wine overlay: %w", err)
	}
	if bytes.Count(data, []byte(goDeleteatFallback)) != 1 {
		return "", nil
	}
	patched := bytes.Replace(data, []byte(goDeleteatFallback),
		[]byte("\tcase NTStatus(0xC0000002) /* STATUS_NOT_IMPLEMENTED: Wine 8, added by hotpatch's testenv */, STATUS_INVALID_INFO_CLASS, "), 1)
	h := sha256.Sum256(patched)
	sub := filepath.Join(dir, "wine-overlay", hex.EncodeToString(h[:])[:24])
	file := filepath.Join(sub, "at_windows.go")
	if err := writeFileAtomic(file, patched); err != nil {
		return "", err
	}
	js, err := json.Marshal(map[string]map[string]string{"Replace": {src: file}})
	if err != nil {
		return "", err
	}
	overlay := filepath.Join(sub, "overlay.json")
	if err := writeFileAtomic(overlay, js); err != nil {
		return "", err
	}
	return overlay, nil
}
