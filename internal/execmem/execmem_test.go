//go:build linux && (amd64 || arm64)

package execmem_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/stretchr/testify/require"
)

// addCode returns a C-ABI function computing a0 + a1 - a2 for this arch.
func addCode() []byte {
	if runtime.GOARCH == "amd64" {
		// mov rax, rdi; add rax, rsi; sub rax, rdx; ret
		return []byte{0x48, 0x89, 0xf8, 0x48, 0x01, 0xf0, 0x48, 0x29, 0xd0, 0xc3}
	}
	var b []byte
	for _, w := range []uint32{
		0x8b010000, // add x0, x0, x1
		0xcb020000, // sub x0, x0, x2
		0xd65f03c0, // ret
	} {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// protection returns the permission string /proc/self/maps shows for addr.
func protection(t *testing.T, addr uintptr) string {
	f, err := os.Open("/proc/self/maps")
	require.NoError(t, err)
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		var lo, hi uintptr
		var perm string
		if _, err := fmt.Sscanf(s.Text(), "%x-%x %s", &lo, &hi, &perm); err == nil && addr >= lo && addr < hi {
			return perm
		}
	}
	t.Fatalf("address %#x not mapped", addr)
	return ""
}

func TestAllocWriteCall(t *testing.T) {
	r, err := execmem.Alloc(100)
	require.NoError(t, err)
	defer r.Free()
	require.Equal(t, os.Getpagesize(), r.Size())
	require.Equal(t, "rw-p", protection(t, r.Addr()))

	code := addCode()
	require.NoError(t, r.Write(64, code))
	require.Equal(t, "r-xp", protection(t, r.Addr()), "code pages must not stay writable")
	got, err := r.Read(64, len(code))
	require.NoError(t, err)
	require.Equal(t, code, got)

	for _, tc := range []struct{ a, b, c, want uintptr }{
		{1, 2, 0, 3},
		{40, 2, 0, 42},
		{0, 0, 1, ^uintptr(0)},
		{1 << 40, 1 << 40, 1 << 41, 0},
	} {
		require.Equal(t, tc.want, execmem.Call(r.Addr()+64, tc.a, tc.b, tc.c))
	}
}

func TestAllocNearFar(t *testing.T) {
	r0, err := execmem.Alloc(4096)
	require.NoError(t, err)
	defer r0.Free()
	from := r0.Addr()

	for _, reach := range []uint64{128 << 20, 1<<31 - 1} {
		r, err := execmem.AllocNear(from, 3*4096, reach)
		require.NoError(t, err)
		require.True(t, execmem.Within(from, r.Addr(), r.Size(), reach), "region %#x not within %#x of %#x", r.Addr(), reach, from)
		require.NoError(t, r.Write(0, addCode()))
		require.Equal(t, uintptr(5), execmem.Call(r.Addr(), 2, 3, 0))
		require.NoError(t, r.Free())
	}

	const min = 8 << 30 // beyond rel32 and ADRP-free reach
	r, err := execmem.AllocFar(from, 4096, min)
	require.NoError(t, err)
	defer r.Free()
	require.False(t, execmem.Within(from, r.Addr(), r.Size(), min-1))
	require.NoError(t, r.Write(0, addCode()))
	require.Equal(t, uintptr(7), execmem.Call(r.Addr(), 3, 4, 0))
}

func TestRegionBounds(t *testing.T) {
	r, err := execmem.Alloc(1)
	require.NoError(t, err)
	require.Error(t, r.Write(r.Size()-1, []byte{1, 2}))
	require.Error(t, r.Write(-1, []byte{1}))
	_, err = r.Read(r.Size(), 1)
	require.Error(t, err)
	require.NoError(t, r.Free())
	_, err = r.Read(0, 1)
	require.Error(t, err, "reading a freed region must fail, not fault")
	require.True(t, strings.Contains(err.Error(), "freed"))
}

func TestWithin(t *testing.T) {
	require.True(t, execmem.Within(1<<32, 1<<32+100, 10, 110))
	require.False(t, execmem.Within(1<<32, 1<<32+100, 11, 110))
	require.True(t, execmem.Within(1<<32, 1<<32-110, 10, 110))
	require.False(t, execmem.Within(1<<32, 1<<32-111, 10, 110))
}

func Example() {
	r, err := execmem.Alloc(4096)
	if err != nil {
		panic(err)
	}
	defer r.Free()
	if err := r.Write(0, addCode()); err != nil {
		panic(err)
	}
	fmt.Println(execmem.Call(r.Addr(), 40, 3, 1))
	// Output: 42
}
