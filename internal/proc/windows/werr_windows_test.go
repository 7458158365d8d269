//go:build windows && amd64

package winproc

import (
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// TestWindowCallsAllocate: the calls a commit makes between Stop and Resume
// of the own process (read, write, query, flush, set PC) allocate nothing,
// whether they succeed or fail, and a failure's error stays what it said
// after the window. The window's bookkeeping is entered without suspending
// anyone, so that it runs everywhere (TestSelfWindowAllocs suspends for
// real, opt-in under Wine), with direct calls as Stop makes them.
func TestWindowCallsAllocate(t *testing.T) {
	p, err := Self()
	require.NoError(t, err)
	require.NoError(t, p.prepare())
	page, e := winapi.VirtualAllocEx(windows.CurrentProcess(), 0, 4096, windows.MEM_RESERVE|windows.MEM_COMMIT, windows.PAGE_EXECUTE_READ)
	require.Zero(t, e)
	t.Cleanup(func() { _ = p.Free(uint64(page), 4096) })
	addr := uint64(page)
	code := []byte{0xb8, 0x2a, 0, 0, 0, 0xc3}
	buf := make([]byte, len(code))

	p.st.active = true
	// As in the window: direct calls, on a stack grown beforehand (see
	// winapi.Direct), with the GC off so that it does not shrink.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	growStack()
	_, off := winapi.Direct()
	ok := testing.AllocsPerRun(100, func() {
		require.NoError(t, p.WriteAt(code, addr))
		require.NoError(t, p.FlushICache(addr, uint64(len(code))))
		require.NoError(t, p.ReadAt(buf, addr))
		r, err := p.Query(addr)
		require.NoError(t, err)
		require.Equal(t, proc.ProtRead|proc.ProtExec, r.Prot)
	})
	var kept []error
	bad := testing.AllocsPerRun(100, func() {
		p.st.slotsUsed = 0
		kept = kept[:0]
		kept = append(kept, p.ReadAt(buf, 0x10), p.WriteAt(code, 0x20), p.SetPC(4, 0x1000))
		_, qerr := p.Query(1 << 62)
		kept = append(kept, qerr)
	})
	off()
	require.Zero(t, ok, "allocations of successful calls in the window")
	require.Zero(t, bad, "allocations of failing calls in the window")
	require.Equal(t, code, buf)

	// The errors are the usual typed ones, and survive the window's end.
	require.NoError(t, p.Resume())
	p.st.active = true
	for i := range windowSlots {
		_ = p.ReadAt(buf, uint64(0x100*(i+1))) // new failures use fresh slots
	}
	p.st.active = false
	require.NoError(t, p.Resume())
	for i, want := range []struct {
		op   string
		addr uint64
	}{{"read", 0x10}, {"write", 0x20}} {
		var ae *proc.AccessError
		require.ErrorAs(t, kept[i], &ae)
		require.Equal(t, want.op, ae.Op)
		require.Equal(t, want.addr, ae.Addr)
		require.Contains(t, kept[i].Error(), fmt.Sprintf("%#x", want.addr))
	}
	var te *proc.ThreadError
	require.ErrorAs(t, kept[2], &te)
	require.Equal(t, 4, te.TID)
	require.ErrorIs(t, kept[2], errNotStopped)
	var ae *proc.AccessError
	require.ErrorAs(t, kept[3], &ae)
	require.Equal(t, "query", ae.Op)
	var errno windows.Errno
	require.ErrorAs(t, kept[3], &errno)
	require.NotZero(t, errno)
}

// TestWindowErrorCause: a failure's cause matches its class and its code.
func TestWindowErrorCause(t *testing.T) {
	p := &Process{self: true}
	p.refillSlots()
	p.st.active = true
	err := p.memError("write", 0x1000, 5, windows.ERROR_ACCESS_DENIED, proc.ErrPermission)
	require.ErrorIs(t, err, proc.ErrPermission)
	require.ErrorIs(t, err, windows.ERROR_ACCESS_DENIED)
	err = p.memError("read", 0x1000, 5, 0, ErrPartial)
	require.ErrorIs(t, err, ErrPartial)
	require.Contains(t, err.Error(), "partial")
	err = p.threadError("setregs", 9, windows.ERROR_INVALID_HANDLE, nil)
	require.ErrorIs(t, err, windows.ERROR_INVALID_HANDLE)
	require.Equal(t, 3, p.st.slotsUsed)
	p.st.active = false
	p.refillSlots()
	require.Zero(t, p.st.slotsUsed)
	require.ErrorIs(t, err, windows.ERROR_INVALID_HANDLE, "a kept error is not reused")
}
