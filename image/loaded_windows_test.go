//go:build windows

package image

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

// selfMem reads this process's own memory at offsets from base, within size
// bytes (the module's SizeOfImage: everything past it may be unmapped).
type selfMem struct{ base, size uint64 }

func (m selfMem) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || uint64(off) >= m.size {
		return 0, io.EOF
	}
	n := int(min(uint64(len(p)), m.size-uint64(off)))
	addr := uintptr(m.base + uint64(off))
	// The module is mapped for the life of the process; read it in place.
	src := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&addr))), n)
	copy(p, src)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// TestVerifyLoadedSelfWindows verifies the running test binary (a Go PE,
// loaded by Windows or Wine, relocated when ASLR moved it) against its file.
func TestVerifyLoadedSelfWindows(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	img, err := Open(exe)
	require.NoError(t, err)
	var h windows.Handle
	require.NoError(t, windows.GetModuleHandleEx(0, nil, &h))
	base := uint64(h)
	t.Logf("preferred base %#x, loaded at %#x, %d relocations, %d functions", img.Base, base, len(img.Relocs), len(img.Functions))
	mem := selfMem{base: base, size: uint64(img.Size)}
	require.NoError(t, img.VerifyLoaded(mem, base, nil))

	other := *img
	other.Identity.TimeDateStamp++
	var me *IdentityMismatchError
	require.ErrorAs(t, other.VerifyLoaded(mem, base, nil), &me)
	require.Equal(t, "TimeDateStamp", me.Field)
}

// TestVerifyLoadedLibraryWindows has the system loader map a fixture whose
// preferred base is taken (by this very test binary, at 0x140000000), so it
// is relocated, code relocation included, and verifies it in place.
func TestVerifyLoadedLibraryWindows(t *testing.T) {
	for _, path := range []string{
		filepath.Join("testdata", "textrel-x64.dll"),
	} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			img, err := Open(path)
			require.NoError(t, err)
			abs, err := filepath.Abs(path)
			require.NoError(t, err)
			// Map only: no DllMain, no imports resolved, nothing runs.
			h, err := windows.LoadLibraryEx(abs, 0, windows.DONT_RESOLVE_DLL_REFERENCES)
			require.NoError(t, err)
			t.Cleanup(func() { _ = windows.FreeLibrary(h) })
			base := uint64(h)
			t.Logf("preferred base %#x, loaded at %#x, %d relocations (%d in code)", img.Base, base, len(img.Relocs), len(codeRelocs(img)))
			mem := selfMem{base: base, size: uint64(img.Size)}
			require.NoError(t, img.VerifyLoaded(mem, base, nil))
		})
	}
}

// TestVerifyLoadedAllModulesWindows verifies every module of this process
// (the test binary, ntdll, kernel32, msvcrt, ...) against the file it was
// loaded from. Under Wine 8 all of them match. On a Windows that applies
// dynamic value relocations to system DLLs (see VerifyLoaded) this is where
// they would show up, naming the module and RVA.
func TestVerifyLoadedAllModulesWindows(t *testing.T) {
	var mods [512]windows.Handle
	var need uint32
	size := uint32(unsafe.Sizeof(mods[0]))
	require.NoError(t, windows.EnumProcessModules(windows.CurrentProcess(), &mods[0], uint32(len(mods))*size, &need))
	n := int(min(need/size, uint32(len(mods))))
	require.Greater(t, n, 3)
	for _, h := range mods[:n] {
		var name [windows.MAX_PATH]uint16
		_, err := windows.GetModuleFileName(h, &name[0], uint32(len(name)))
		require.NoError(t, err)
		path := windows.UTF16ToString(name[:])
		img, err := Open(path)
		require.NoError(t, err, path)
		base := uint64(h)
		require.NoError(t, img.VerifyLoaded(selfMem{base, uint64(img.Size)}, base, nil), path)
		t.Logf("%s at %#x: %d functions, %d relocations, verified", path, base, len(img.Functions), len(img.Relocs))
	}
}
