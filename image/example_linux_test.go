//go:build linux

package image_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

// memAt reads a process's memory through /proc/PID/mem at offsets from base.
type memAt struct {
	f    *os.File
	base uint64
}

func (m memAt) ReadAt(p []byte, off int64) (int, error) { return m.f.ReadAt(p, int64(m.base)+off) }

// Check that the running program is exactly the build on disk: the same
// identity, and code that, once its base relocations are undone, hashes the
// same. A patcher does this before touching a process.
func ExampleImage_VerifyLoaded() {
	exe, _ := os.Executable()
	exe, _ = filepath.EvalSymlinks(exe) // /proc/self/maps names the real file
	img, err := image.Open(exe)
	if err != nil {
		fmt.Println(err)
		return
	}
	// The load address: where the file's first page is mapped.
	maps, _ := os.Open("/proc/self/maps")
	defer maps.Close()
	var base uint64
	for sc := bufio.NewScanner(maps); sc.Scan(); {
		f := strings.Fields(sc.Text()) // start-end perms offset dev inode path
		if len(f) >= 6 && f[2] == "00000000" && f[5] == exe {
			start, _, _ := strings.Cut(f[0], "-")
			base, _ = strconv.ParseUint(start, 16, 64)
			break
		}
	}
	mem, err := os.Open("/proc/self/mem")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mem.Close()
	if err := img.VerifyLoaded(memAt{mem, base}, base, nil); err != nil {
		fmt.Println("refuse:", err)
		return
	}
	fmt.Println("the running code is the", img.Format, "file's, build ID", len(img.Identity.BuildID) > 0)
	// Output: the running code is the ELF file's, build ID true
}
