package winapi

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// The offsets are winnt.h's (Windows SDK 10.0.22621), as the SDK's
// C_ASSERTs and the debugger's `dt _CONTEXT` print them.
func TestContextAMD64Layout(t *testing.T) {
	var c CONTEXTAMD64
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof", unsafe.Sizeof(c), ContextAMD64SizeBytes},
		{"ContextFlags", unsafe.Offsetof(c.ContextFlags), 0x30},
		{"MxCsr", unsafe.Offsetof(c.MxCsr), 0x34},
		{"SegCs", unsafe.Offsetof(c.SegCs), 0x38},
		{"SegSs", unsafe.Offsetof(c.SegSs), 0x42},
		{"EFlags", unsafe.Offsetof(c.EFlags), 0x44},
		{"Dr0", unsafe.Offsetof(c.Dr0), 0x48},
		{"Dr7", unsafe.Offsetof(c.Dr7), 0x70},
		{"Rax", unsafe.Offsetof(c.Rax), 0x78},
		{"Rcx", unsafe.Offsetof(c.Rcx), 0x80},
		{"Rsp", unsafe.Offsetof(c.Rsp), 0x98},
		{"Rbp", unsafe.Offsetof(c.Rbp), 0xa0},
		{"R8", unsafe.Offsetof(c.R8), 0xb8},
		{"R15", unsafe.Offsetof(c.R15), 0xf0},
		{"Rip", unsafe.Offsetof(c.Rip), 0xf8},
		{"FltSave", unsafe.Offsetof(c.FltSave), 0x100},
		{"VectorRegister", unsafe.Offsetof(c.VectorRegister), 0x300},
		{"VectorControl", unsafe.Offsetof(c.VectorControl), 0x4a0},
		{"DebugControl", unsafe.Offsetof(c.DebugControl), 0x4a8},
		{"LastExceptionFromRip", unsafe.Offsetof(c.LastExceptionFromRip), 0x4c8},
		{"XMMSaveArea32", unsafe.Sizeof(c.FltSave), 512},
		{"XmmRegisters", unsafe.Offsetof(c.FltSave.XmmRegisters), 0xa0},
	} {
		require.Equal(t, tc.want, tc.got, "CONTEXT(AMD64).%s", tc.name)
	}
}

func TestContextARM64Layout(t *testing.T) {
	var c CONTEXTARM64
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"sizeof", unsafe.Sizeof(c), ContextARM64SizeBytes},
		{"ContextFlags", unsafe.Offsetof(c.ContextFlags), 0x0},
		{"Cpsr", unsafe.Offsetof(c.Cpsr), 0x4},
		{"X0", unsafe.Offsetof(c.X), 0x8},
		{"Fp", unsafe.Offsetof(c.X) + 29*8, 0xf0},
		{"Lr", unsafe.Offsetof(c.X) + 30*8, 0xf8},
		{"Sp", unsafe.Offsetof(c.Sp), 0x100},
		{"Pc", unsafe.Offsetof(c.Pc), 0x108},
		{"V", unsafe.Offsetof(c.V), 0x110},
		{"Fpcr", unsafe.Offsetof(c.Fpcr), 0x310},
		{"Fpsr", unsafe.Offsetof(c.Fpsr), 0x314},
		{"Bcr", unsafe.Offsetof(c.Bcr), 0x318},
		{"Bvr", unsafe.Offsetof(c.Bvr), 0x338},
		{"Wcr", unsafe.Offsetof(c.Wcr), 0x378},
		{"Wvr", unsafe.Offsetof(c.Wvr), 0x380},
	} {
		require.Equal(t, tc.want, tc.got, "CONTEXT(ARM64).%s", tc.name)
	}
}

func TestSystemThreadInformationLayout(t *testing.T) {
	var s SystemThreadInformation
	require.Equal(t, uintptr(0x50), unsafe.Sizeof(s))
	require.Equal(t, uintptr(0x20), unsafe.Offsetof(s.StartAddress))
	require.Equal(t, uintptr(0x28), unsafe.Offsetof(s.UniqueProcess))
	require.Equal(t, uintptr(0x30), unsafe.Offsetof(s.UniqueThread))
	require.Equal(t, uintptr(0x44), unsafe.Offsetof(s.ThreadState))
	var si SystemInfo
	require.Equal(t, uintptr(48), unsafe.Sizeof(si))
	require.Equal(t, uintptr(0x28), unsafe.Offsetof(si.AllocationGranularity))
}

func TestContextAligned(t *testing.T) {
	// Many allocations so that both 16-aligned and merely 8-aligned blocks
	// come out of the allocator; every one must be realigned.
	for i := 0; i < 64; i++ {
		a := NewContextAMD64(ContextAMD64Control)
		require.Zero(t, uintptr(unsafe.Pointer(a))%16)
		require.Equal(t, uint32(ContextAMD64Control), a.ContextFlags)
		require.Zero(t, a.Rip)
		b := NewContextARM64(ContextARM64Control)
		require.Zero(t, uintptr(unsafe.Pointer(b))%16)
		require.Equal(t, uint32(ContextARM64Control), b.ContextFlags)
		_ = make([]byte, 8*(i%3)) // vary the allocator's position
	}
}
