//go:build windows

package patch_test

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

// noWriteExec fails when the page at addr (of this process) is writable
// and executable, or not plain execute-read.
func noWriteExec(t testing.TB, _ int, addr uint64) {
	t.Helper()
	var mbi windows.MemoryBasicInformation
	require.NoError(t, windows.VirtualQuery(uintptr(addr), &mbi, unsafe.Sizeof(mbi)))
	require.Equal(t, uint32(windows.PAGE_EXECUTE_READ), mbi.Protect, "protection of %#x", addr)
}
