//go:build linux

package image

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// procMem reads a process's memory through /proc/PID/mem, at offsets from base.
type procMem struct {
	f    *os.File
	base uint64
}

func (m procMem) ReadAt(p []byte, off int64) (int, error) {
	return m.f.ReadAt(p, int64(m.base)+off)
}

// moduleBase returns the lowest address at which pid maps file offset 0 of path.
func moduleBase(t *testing.T, pid string, path string) uint64 {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/maps")
	require.NoError(t, err)
	defer f.Close()
	want, err := filepath.EvalSymlinks(path)
	require.NoError(t, err)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// start-end perms offset dev inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[2] != "00000000" {
			continue
		}
		if strings.TrimSuffix(strings.Join(fields[5:], " "), " (deleted)") != want {
			continue
		}
		start, err := strconv.ParseUint(strings.SplitN(fields[0], "-", 2)[0], 16, 64)
		require.NoError(t, err)
		return start
	}
	require.NoError(t, sc.Err())
	t.Fatalf("%s is not mapped in process %s", want, pid)
	return 0
}

func openProcMem(t *testing.T, pid string, base uint64) procMem {
	t.Helper()
	f, err := os.Open("/proc/" + pid + "/mem")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return procMem{f, base}
}

// TestVerifyLoadedSelf checks the running test binary against its own file:
// whatever the build mode (non-PIE: loaded at its preferred base; PIE:
// elsewhere, with RELATIVE relocations applied by the loader).
func TestVerifyLoadedSelf(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	img, err := Open(exe)
	require.NoError(t, err)
	base := moduleBase(t, "self", exe)
	mem := openProcMem(t, "self", base)
	t.Logf("%s: preferred base %#x, loaded at %#x, %d relocations, build ID %x", filepath.Base(exe), img.Base, base, len(img.Relocs), img.Identity.BuildID)
	require.NoError(t, img.VerifyLoaded(mem, base, nil))

	// The same memory is not another build.
	other := *img
	other.Identity.BuildID = append([]byte{0}, img.Identity.BuildID...)
	require.ErrorIs(t, other.VerifyLoaded(mem, base, nil), ErrIdentityMismatch)
}

// TestVerifyLoadedChild runs PIE fixtures whose .text carries RELATIVE
// relocations (RELA, and packed RELR when gcc can build one now), lets the
// system's dynamic loader place and relocate them at a random base, and
// verifies them through /proc/PID/mem.
func TestVerifyLoadedChild(t *testing.T) {
	if runtime.GOARCH != "amd64" || testenv.Emulated() {
		t.Skip("runs the x86-64 fixtures natively; the amd64 leg covers it")
	}
	if _, err := os.Stat("/lib64/ld-linux-x86-64.so.2"); err != nil {
		t.Skip("the fixtures are glibc programs; this system has no /lib64/ld-linux-x86-64.so.2")
	}
	t.Run("rela", func(t *testing.T) {
		path, err := filepath.Abs(filepath.Join("testdata", "textrel-amd64.elf"))
		require.NoError(t, err)
		verifyChild(t, path)
	})
	t.Run("relr", func(t *testing.T) {
		verifyChild(t, buildRELR(t))
	})
}

func verifyChild(t *testing.T, path string) {
	img, err := Open(path)
	require.NoError(t, err)
	require.NotEmpty(t, codeRelocs(img))

	cmd := exec.Command(path)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	// main writes one byte once the loader has finished relocating.
	ready := make([]byte, 1)
	_, err = io.ReadFull(stdout, ready)
	require.NoError(t, err)

	pid := strconv.Itoa(cmd.Process.Pid)
	base := moduleBase(t, pid, path)
	require.NotEqual(t, img.Base, base, "a PIE is loaded away from its link address")
	mem := openProcMem(t, pid, base)
	require.NoError(t, img.VerifyLoaded(mem, base, nil))

	// Its relocated words really were relocated: read them back.
	for _, r := range codeRelocs(img) {
		word := make([]byte, 8)
		_, err = mem.ReadAt(word, int64(r.RVA))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("%#x", uint64(r.Addend)+base-img.Base), fmt.Sprintf("%#x", leUint64(word)))
	}
	t.Logf("%s loaded at %#x, %d relocations in code undone", filepath.Base(path), base, len(codeRelocs(img)))

	// The shared objects the system loaded into the child (libc, ld.so)
	// verify against their files too.
	libs := 0
	for _, lib := range mappedFiles(t, pid) {
		if !strings.Contains(filepath.Base(lib), ".so") {
			continue
		}
		limg, err := Open(lib)
		require.NoError(t, err, lib)
		lbase := moduleBase(t, pid, lib)
		require.NoError(t, limg.VerifyLoaded(procMem{mem.f, lbase}, lbase, nil), lib)
		libs++
	}
	require.Positive(t, libs, "a glibc program maps libc and ld.so")
	t.Logf("%d shared objects verified too", libs)
}

// mappedFiles lists the files pid maps from their offset 0.
func mappedFiles(t *testing.T, pid string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/maps")
	require.NoError(t, err)
	seen := map[string]bool{}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || f[2] != "00000000" || !strings.HasPrefix(f[5], "/") || seen[f[5]] {
			continue
		}
		seen[f[5]] = true
		out = append(out, f[5])
	}
	return out
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
