//go:build windows && amd64

package winproc

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// value() of child.c as mingw -O2 compiles it: mov eax, 1; ret.
var valueCode = []byte{0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3}

// patchImm rewrites value()'s immediate with all threads stopped, the way
// the transaction will: stop, check no PC in the bytes, make writable,
// write, restore protection, flush, resume.
func patchImm(t *testing.T, p *Process, addr uint64, imm byte) {
	t.Helper()
	threads, err := p.Stop(context.Background())
	require.NoError(t, err)
	var parked []int
	for _, th := range threads {
		if th.PC > addr && th.PC < addr+5 { // inside the mov (its start is a boundary)
			parked = append(parked, th.ID)
		}
	}
	old, err := p.Protect(addr, 6, proc.ProtRead|proc.ProtWrite|proc.ProtExec)
	werr := p.WriteAt([]byte{imm}, addr+1)
	_, perr := p.Protect(addr, 6, old)
	ferr := p.FlushICache(addr, 6)
	require.NoError(t, p.Resume())
	require.NoError(t, err)
	require.NoError(t, werr)
	require.NoError(t, perr)
	require.NoError(t, ferr)
	require.Equal(t, proc.ProtRead|proc.ProtExec, old)
	require.Empty(t, parked, "a thread's PC is inside the immediate, mid-instruction: impossible")
}

func TestPatchChild(t *testing.T) {
	c, p := openChild(t, 4, false)
	require.Equal(t, c.cmd.Process.Pid, p.PID())
	require.Equal(t, arch.AMD64, p.Arch())
	require.Equal(t, proc.Caps{StopThreads: true, SetPC: true}, p.Caps())
	c.waitResult(t, 1)

	mods, err := p.Modules()
	require.NoError(t, err)
	var exe proc.Module
	names := []string{}
	for _, m := range mods {
		names = append(names, m.Name)
		if strings.EqualFold(m.Name, "child.exe") {
			exe = m
		}
	}
	require.NotZero(t, exe.Base, "child.exe not in %v", names)
	require.Contains(t, strings.ToLower(names[1]+" "+strings.Join(names, " ")), "kernel32.dll")
	require.True(t, strings.HasSuffix(strings.ToLower(exe.Path), `\child.exe`), exe.Path)
	require.True(t, c.value >= exe.Base && c.value < exe.Base+exe.Size, "value %#x outside child.exe %#x+%#x", c.value, exe.Base, exe.Size)
	hdr := make([]byte, 2)
	require.NoError(t, p.ReadAt(hdr, exe.Base))
	require.Equal(t, "MZ", string(hdr))

	before := make([]byte, len(valueCode))
	require.NoError(t, p.ReadAt(before, c.value))
	require.Equal(t, valueCode, before)
	regBefore, err := p.Query(c.value)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtExec, regBefore.Prot)
	require.True(t, regBefore.Base <= c.value && c.value < regBefore.Base+regBefore.Size)

	patchImm(t, p, c.value, 2)
	c.waitResult(t, 2)
	got := make([]byte, len(valueCode))
	require.NoError(t, p.ReadAt(got, c.value))
	require.Equal(t, []byte{0xb8, 0x02, 0, 0, 0, 0xc3}, got)

	patchImm(t, p, c.value, 1)
	c.waitResult(t, 1)
	require.NoError(t, p.ReadAt(got, c.value))
	require.Equal(t, before, got)
	regAfter, err := p.Query(c.value)
	require.NoError(t, err)
	require.Equal(t, regBefore, regAfter, "protections restored exactly")
}

func TestStopThreads(t *testing.T) {
	const workers = 4
	_, p := openChild(t, workers, false)
	threads, err := p.Stop(context.Background())
	require.NoError(t, err)
	// Copy before Resume: the slice belongs to p.
	threads = append([]proc.Thread(nil), threads...)
	type where struct {
		r   proc.Region
		err error
	}
	regions := make([]where, len(threads))
	for i, th := range threads {
		regions[i].r, regions[i].err = p.Query(th.PC)
	}
	_, err = p.Stop(context.Background())
	require.Error(t, err, "a second Stop without Resume is refused")
	require.NoError(t, p.Resume())
	require.NoError(t, p.Resume(), "Resume without Stop is a no-op")

	// main, watchdog and the workers at least (Wine may add its own).
	require.GreaterOrEqual(t, len(threads), workers+2)
	ids := map[int]bool{}
	for i, th := range threads {
		require.False(t, ids[th.ID], "thread %d listed twice", th.ID)
		ids[th.ID] = true
		require.NoError(t, regions[i].err)
		require.NotZero(t, regions[i].r.Prot&proc.ProtExec, "thread %d PC %#x in %+v", th.ID, th.PC, regions[i].r)
		require.NotZero(t, th.SP)
	}
}

// Threads start and exit all the time in the churn child: Stop still
// returns a consistent set, never an error, and the child keeps running.
func TestStopWhileThreadsExit(t *testing.T) {
	c, p := openChild(t, 2, true)
	for i := 0; i < 20; i++ {
		threads, err := p.Stop(context.Background())
		require.NoError(t, err, "round %d", i)
		require.GreaterOrEqual(t, len(threads), 3)
		require.NoError(t, p.Resume())
	}
	c.waitResult(t, 1)
}

// SetPC really moves a thread: park a worker on a `jmp $` loop in memory
// allocated in the child, and find it there at the next Stop.
func TestSetPC(t *testing.T) {
	c, p := openChild(t, 2, false)
	loop, err := p.AllocNear(context.Background(), c.value, 4096, 1<<31-4096, proc.ProtRead|proc.ProtWrite)
	require.NoError(t, err)
	require.NoError(t, p.WriteAt([]byte{0xeb, 0xfe}, loop)) // jmp $
	old, err := p.Protect(loop, 4096, proc.ProtRead|proc.ProtExec)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtWrite, old)
	require.NoError(t, p.FlushICache(loop, 2))

	threads, err := p.Stop(context.Background())
	require.NoError(t, err)
	victim := threads[len(threads)-1].ID
	err = p.SetPC(victim, loop)
	serr := p.SetPC(1<<30, loop)
	var moved uint64
	for _, th := range threads {
		if th.ID == victim {
			moved = th.PC
		}
	}
	require.NoError(t, p.Resume())
	require.NoError(t, err)
	require.Error(t, serr, "a thread Stop did not stop")
	require.Equal(t, loop, moved, "Stop's result shows the new PC")

	threads, err = p.Stop(context.Background())
	require.NoError(t, err)
	var pc uint64
	for _, th := range threads {
		if th.ID == victim {
			pc = th.PC
		}
	}
	require.NoError(t, p.Resume())
	require.Equal(t, loop, pc, "thread %d runs the loop", victim)
}

func TestAllocNearFree(t *testing.T) {
	c, p := openChild(t, 1, false)
	const reach = 1<<31 - 1
	for _, prot := range []proc.Prot{proc.ProtRead | proc.ProtWrite, proc.ProtRead | proc.ProtExec} {
		a, err := p.AllocNear(context.Background(), c.value, 3*4096, reach, prot)
		require.NoError(t, err)
		require.Zero(t, a%(64<<10), "granularity aligned")
		require.LessOrEqual(t, dist(a, c.value), uint64(reach))
		require.LessOrEqual(t, dist(a+3*4096, c.value), uint64(reach))
		r, err := p.Query(a)
		require.NoError(t, err)
		require.Equal(t, proc.Region{Base: a, Size: 3 * 4096, Prot: prot}, r)
		if prot&proc.ProtWrite != 0 {
			data := []byte("sixteen bytes...")
			require.NoError(t, p.WriteAt(data, a+4096-8)) // across a page boundary
			got := make([]byte, len(data))
			require.NoError(t, p.ReadAt(got, a+4096-8))
			require.Equal(t, data, got)
		}
		require.NoError(t, p.Free(a, 3*4096))
		r, err = p.Query(a)
		require.NoError(t, err)
		require.Zero(t, r.Prot, "freed")
		err = p.Free(a, 3*4096)
		var ae *proc.AccessError
		require.ErrorAs(t, err, &ae, "double free")
		require.Equal(t, a, ae.Addr)
	}
	// Inside the image there is no free range: a tiny reach must fail.
	_, err := p.AllocNear(context.Background(), c.value, 4096, 4096, proc.ProtRead)
	require.ErrorIs(t, err, proc.ErrNoMemory)
	// A write-only page does not exist on Windows.
	_, err = p.AllocNear(context.Background(), c.value, 4096, reach, proc.ProtWrite)
	require.ErrorIs(t, err, ErrProtection)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.AllocNear(ctx, c.value, 4096, reach, proc.ProtRead)
	require.ErrorIs(t, err, context.Canceled)
}

func TestMemoryErrors(t *testing.T) {
	_, p := openChild(t, 1, false)
	var ae *proc.AccessError
	buf := make([]byte, 16)
	// The first 64 KiB of an address space are never mapped.
	err := p.ReadAt(buf, 0x1000)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "read", ae.Op)
	require.Equal(t, uint64(0x1000), ae.Addr)
	err = p.WriteAt(buf, 0x1000)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "write", ae.Op)
	_, err = p.Protect(0x1000, 16, proc.ProtRead)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "protect", ae.Op)
	_, err = p.Protect(0x1000, 16, proc.ProtWrite|proc.ProtExec)
	require.ErrorIs(t, err, ErrProtection)
	_, err = p.Query(1 << 62)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "query", ae.Op)
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		want error
	}{
		{"zero", 0, proc.ErrExited},
		{"negative", -1, proc.ErrExited},
		{"no such process", 0x3FFFFFFC, proc.ErrExited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.pid, Options{})
			require.ErrorIs(t, err, tc.want)
		})
	}
	// Wine grants every process of the user full access (no DACLs on
	// processes, no integrity levels), so a real denial cannot be produced
	// here: check the classification of the OS's answer instead.
	err := openError(1234, windows.ERROR_ACCESS_DENIED)
	require.ErrorIs(t, err, proc.ErrPermission)
	require.ErrorIs(t, err, windows.ERROR_ACCESS_DENIED)
	require.Contains(t, err.Error(), "1234")
}

// After the child exits every operation says so.
func TestChildExited(t *testing.T) {
	c, p := openChild(t, 2, false)
	require.NoError(t, c.cmd.Process.Kill())
	c.cmd.Wait()
	_, err := p.Stop(context.Background())
	require.ErrorIs(t, err, proc.ErrExited)
	err = p.ReadAt(make([]byte, 4), c.value)
	require.ErrorIs(t, err, proc.ErrExited)
	var ae *proc.AccessError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, c.value, ae.Addr)
	require.NoError(t, p.Close())
}

func TestStopCanceled(t *testing.T) {
	_, p := openChild(t, 1, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Stop(ctx)
	require.ErrorIs(t, err, context.Canceled)
	threads, err := p.Stop(context.Background())
	require.NoError(t, err, "a canceled Stop leaves nothing suspended")
	require.NotEmpty(t, threads)
	require.NoError(t, p.Close(), "Close resumes")
}

// Wine does not enforce Arbitrary Code Guard (SetProcessMitigationPolicy
// with ProhibitDynamicCode) nor process DACLs: check how the OS's answers
// are classified instead.
func TestErrorClassification(t *testing.T) {
	_, p := openChild(t, 1, false)
	for _, tc := range []struct {
		errno windows.Errno
		want  error
	}{
		{windows.ERROR_DYNAMIC_CODE_BLOCKED, proc.ErrDynamicCode},
		{windows.ERROR_ACCESS_DENIED, proc.ErrPermission},
	} {
		err := p.accessError("alloc", 0x7ff000010000, 4096, tc.errno)
		require.ErrorIs(t, err, tc.want)
		require.ErrorIs(t, err, tc.errno)
		var ae *proc.AccessError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, uint64(0x7ff000010000), ae.Addr)
		require.Contains(t, err.Error(), "0x7ff000010000")
	}
}
