//go:build linux && (amd64 || arm64)

package pkg

import (
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/trampoline"
)

// mapImage lays img out in this process at its RVAs (code and data, .bss
// zeroed) and returns the region. The region is left read+write+execute:
// only this test does that, so that the fixture's globals can be written.
func mapImage(t *testing.T, img *image.Image) *execmem.Region {
	t.Helper()
	mem := make([]byte, img.Size)
	for _, s := range img.Sections {
		if s.Flags&image.SectionUninit == 0 && uint64(s.RVA)+uint64(len(s.Data)) <= uint64(len(mem)) {
			copy(mem[s.RVA:], s.Data)
		}
	}
	r, err := execmem.Alloc(len(mem))
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Free() })
	require.NoError(t, r.Write(0, mem))
	_, _, errno := unix.Syscall(unix.SYS_MPROTECT, r.Addr(), uintptr(r.Size()), unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC)
	require.Zero(t, errno)
	return r
}

// The v2 bodies of the Linux C fixture, built into a package, linked against
// the v1 image mapped in this process and called: they compute what the
// fixture model says v2 computes, reading and writing v1's globals, calling
// v1's helpers and the carried added function, returning the carried string,
// dispatching through the copied jump table. The v1 functions in the same
// mapping compute v1's results, so the oracle tells the versions apart.
func TestLinkedBodiesExecute(t *testing.T) {
	name := "c/linux/" + runtime.GOARCH
	b := fixtures.GroundTruth(t).Build(name)
	require.NotNil(t, b)
	fb := buildFixture(t, b)
	p := fb.pkg
	module := mapImage(t, fb.old)

	reach := uint64(1<<31 - 1)
	if runtime.GOARCH == "arm64" {
		reach = 128 << 20
	}
	reach -= uint64(fb.old.Size)
	lay := p.Layout()
	patch, err := execmem.AllocNear(module.Addr(), int(lay.Size), reach)
	require.NoError(t, err)
	t.Cleanup(func() { _ = patch.Free() })
	l, err := p.Link(uint64(module.Addr()), uint64(patch.Addr()))
	require.NoError(t, err)
	require.NoError(t, patch.Write(0, l.Code))

	newFn := func(name string) uintptr {
		f := p.Function(name)
		require.NotNil(t, f, name)
		return uintptr(l.Entries[slicesIndex(p, f)])
	}
	oldFn := func(name string) uintptr {
		f, ok := fb.old.FunctionByName(name)
		require.True(t, ok, name)
		return module.Addr() + uintptr(f.RVA)
	}
	global := func(name string) uint32 {
		for _, s := range fb.old.Symbols {
			if s.Name == name {
				return s.RVA
			}
		}
		t.Fatalf("no symbol %s", name)
		return 0
	}
	readGlobal := func(name string, size int) int64 {
		b, err := module.Read(int(global(name)), size)
		require.NoError(t, err)
		if size == 4 {
			return int64(int32(binary.LittleEndian.Uint32(b)))
		}
		return int64(binary.LittleEndian.Uint64(b))
	}
	i32 := func(v uintptr) int64 { return int64(int32(uint32(v))) }

	// The string greeting() returns: in the carried constants (v2) or in
	// the old image (v1).
	str := func(ptr uintptr) string {
		var r *execmem.Region
		switch {
		case ptr >= patch.Addr() && ptr < patch.Addr()+uintptr(patch.Size()):
			r = patch
		case ptr >= module.Addr() && ptr < module.Addr()+uintptr(module.Size()):
			r = module
		default:
			t.Fatalf("greeting returned %#x, outside both mappings", ptr)
		}
		b, err := r.Read(int(ptr-r.Addr()), 13)
		require.NoError(t, err)
		return string(b)
	}
	require.Equal(t, "hello from v2", str(execmem.Call(newFn("greeting"))))
	require.Equal(t, "hello from v1", str(execmem.Call(oldFn("greeting"))))

	m2 := fixtures.Model{Version: "v2"}
	v1 := fixtures.Model{Version: "v1"}
	for c := int64(0); c < 40; c++ {
		want := m2.Next(c)
		old := v1.Next(c)
		require.Equal(t, want.Scale, i32(execmem.Call(newFn("scale"), uintptr(c))), "scale(%d)", c)
		require.Equal(t, old.Scale, i32(execmem.Call(oldFn("scale"), uintptr(c))), "v1 scale(%d)", c)
		require.Equal(t, want.Slot, i32(execmem.Call(newFn("slot_get"), uintptr(c%12))), "slot_get(%d)", c%12)
		require.Equal(t, want.Disp, i32(execmem.Call(newFn("dispatch"), uintptr(c%13), uintptr(c))), "dispatch(%d, %d)", c%13, c)
		require.Equal(t, old.Disp, i32(execmem.Call(oldFn("dispatch"), uintptr(c%13), uintptr(c))), "v1 dispatch(%d, %d)", c%13, c)
		// record(c) adds to v1's total and, new in v2, counts v1's hits.
		require.Equal(t, want.Rec, int64(execmem.Call(newFn("record"), uintptr(c))), "record(%d)", c)
		require.Equal(t, want.Total, readGlobal("total", 8))
		require.Equal(t, want.Hits, readGlobal("hits", 4))
	}
	// The carried added function is called by dispatch case 6 and directly.
	require.Equal(t, int64(7*10-3), i32(execmem.Call(newFn("fresh_step"), 10)))

	// The entry jump Apply will write fits each replaced function.
	for i, f := range p.Functions {
		if f.New {
			continue
		}
		from := uint64(module.Addr()) + uint64(f.OldRVA)
		require.NoError(t, trampoline.CheckFits(p.Base.Arch, f.Name, from, int(f.OldSize), l.Entries[i]))
	}
}

func slicesIndex(p *Package, f *Function) int {
	for i := range p.Functions {
		if &p.Functions[i] == f {
			return i
		}
	}
	return -1
}
