package verify_test

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/verify"
)

func TestPreImageReadback(t *testing.T) {
	for _, tc := range []struct {
		name      string
		want, got []byte
		ok        bool
	}{
		{"equal", []byte{0x55, 0x48}, []byte{0x55, 0x48}, true},
		{"empty", nil, []byte{}, true},
		{"differ", []byte{0x55, 0x48}, []byte{0xe9, 0x48}, false},
		{"short", []byte{0x55, 0x48}, []byte{0x55}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify.PreImage(0x1000, "f", tc.want, tc.got)
			rerr := verify.Readback(0x1000, "f", tc.want, tc.got)
			if tc.ok {
				require.NoError(t, err)
				require.NoError(t, rerr)
				return
			}
			var pe *verify.PreImageError
			require.ErrorAs(t, err, &pe)
			require.ErrorIs(t, err, verify.ErrPreImage)
			require.Equal(t, uint64(0x1000), pe.Addr)
			require.Equal(t, "f", pe.Symbol)
			require.Equal(t, tc.want, pe.Want)
			require.Equal(t, tc.got, pe.Got)
			require.Contains(t, err.Error(), "f at 0x1000")
			var re *verify.ReadbackError
			require.ErrorAs(t, rerr, &re)
			require.ErrorIs(t, rerr, verify.ErrReadback)
			require.Equal(t, tc.got, re.Read)
		})
	}
}

func TestPreImageCopies(t *testing.T) {
	got := []byte{1, 2}
	err := verify.PreImage(0, "", []byte{1, 3}, got)
	got[0] = 9
	var pe *verify.PreImageError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []byte{1, 2}, pe.Got, "the error keeps its own copy")
}

func TestActiveness(t *testing.T) {
	g := []byte{0x0f, 0x05, 0xb8, 1, 0, 0, 0, 0x90, 0x90, 0x90, 0x90, 0x90, 0x0f, 0x05}
	rs := []verify.Range{{Start: 0x1000, End: 0x1005, Function: "f"}, {Start: 0x2000, End: 0x200e, Function: "g", Bytes: g}}
	for _, tc := range []struct {
		name   string
		pc     uint64
		rewind uint64
		noRegs bool
		fn     string // "" = not active
	}{
		{"entry is not active", 0x1000, 0, false, ""},
		{"inside", 0x1001, 0, false, "f"},
		{"last byte", 0x1004, 0, false, "f"},
		{"end", 0x1005, 0, false, ""},
		{"before", 0xfff, 0, false, ""},
		{"second range", 0x2007, 0, false, "g"},
		{"end, rewound into range", 0x1005, 2, false, "f"},
		{"entry+2 rewound to entry", 0x1002, 2, false, "f"},
		{"past end+rewind", 0x1007, 2, false, ""},
		{"rewind below zero", 1, 2, false, ""},
		{"no registers", 0x1001, 0, true, ""},
		{"syscall known at rewound pc", 0x2003, 99, false, "g"},
		{"no syscall at rewound pc", 0x200f, 99, false, ""},
		{"syscall is last instruction", 0x200e, 99, false, "g"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := []verify.Thread{{ID: 1, PC: 0x5000}, {ID: 7, PC: tc.pc, NoRegs: tc.noRegs}}
			opts := verify.ActivenessOptions{SyscallRewind: tc.rewind}
			if tc.rewind == 99 { // bytes known: g is "mov eax,1; syscall; ...; syscall"
				opts = verify.LinuxAMD64
			}
			err := verify.Activeness(th, rs, opts)
			if tc.fn == "" {
				require.NoError(t, err)
				return
			}
			var ae *verify.ActiveThreadError
			require.ErrorAs(t, err, &ae)
			require.ErrorIs(t, err, verify.ErrActive)
			require.Equal(t, 7, ae.TID)
			require.Equal(t, tc.pc, ae.PC)
			require.Equal(t, tc.fn, ae.Function)
			require.False(t, ae.Stack)
			require.Contains(t, err.Error(), "thread 7")
		})
	}
}

func TestStackScan(t *testing.T) {
	fns := []verify.Range{{Start: 0x1000, End: 0x1100, Function: "f"}}
	words := func(ws ...uint64) []byte {
		b := make([]byte, 8*len(ws))
		for i, w := range ws {
			binary.LittleEndian.PutUint64(b[8*i:], w)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		sp    uint64
		stack []byte
		size  int
		slot  uint64 // 0 = none
		pc    uint64
	}{
		{"clean", 0x7000, words(0, 0x999, 0x1000, 0x1101), 8, 0, 0},
		{"return address", 0x7000, words(0, 0x1042), 8, 0x7008, 0x1042},
		{"next function's entry is not a return address", 0x7000, words(0x1100), 8, 0, 0},
		{"last byte", 0x7000, words(0x10ff), 8, 0x7000, 0x10ff},
		{"unaligned sp skips to aligned word", 0x7004, append([]byte{0, 0, 0, 0}, words(0x1010)...), 8, 0x7008, 0x1010},
		{"4-byte words", 0x7000, []byte{0, 0, 0, 0, 0x10, 0x10, 0, 0}, 4, 0x7004, 0x1010},
		{"partial word ignored", 0x7000, []byte{0x10, 0x10, 0, 0}, 8, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := verify.StackScan(3, tc.sp, tc.stack, fns, tc.size)
			if tc.slot == 0 {
				require.NoError(t, err)
				return
			}
			var ae *verify.ActiveThreadError
			require.ErrorAs(t, err, &ae)
			require.True(t, ae.Stack)
			require.Equal(t, tc.slot, ae.Slot)
			require.Equal(t, tc.pc, ae.PC)
			require.Equal(t, "f", ae.Function)
			require.Equal(t, 3, ae.TID)
		})
	}
	require.Error(t, verify.StackScan(1, 0, nil, fns, 3))
}

func TestProtection(t *testing.T) {
	rx := verify.ProtRead | verify.ProtExec
	rwx := rx | verify.ProtWrite
	require.NoError(t, verify.Protection(0x1000, rx, rx))
	err := verify.Protection(0x1000, rx, verify.ProtRead)
	var pe *verify.ProtectionError
	require.ErrorAs(t, err, &pe)
	require.ErrorIs(t, err, verify.ErrProtection)
	require.Equal(t, rx, pe.Want)
	// Even a page that was W+X before must not be left W+X.
	require.ErrorIs(t, verify.Protection(0x1000, rwx, rwx), verify.ErrProtection)
	require.ErrorIs(t, verify.NoWriteExec(0x1000, rwx), verify.ErrProtection)
	require.NoError(t, verify.NoWriteExec(0x1000, verify.ProtRead|verify.ProtWrite))
}

func TestConcurrentWrite(t *testing.T) {
	for _, tc := range []struct {
		name      string
		a         arch.Arch
		addr      uint64
		n, first  int
		word      uint64
		size      int
		errSubstr string
	}{
		{"amd64 aligned 5 in 8", arch.AMD64, 0x1000, 5, 5, 0x1000, 8, ""},
		{"amd64 offset 3", arch.AMD64, 0x1003, 5, 7, 0x1000, 8, ""},
		{"amd64 offset 4 crosses", arch.AMD64, 0x1004, 5, 5, 0, 0, "cross"},
		{"amd64 short jump at offset 6", arch.AMD64, 0x1006, 2, 4, 0x1000, 8, ""},
		{"amd64 short jump at offset 7 crosses", arch.AMD64, 0x1007, 2, 4, 0, 0, "cross"},
		{"amd64 overlaps second instruction", arch.AMD64, 0x1000, 5, 4, 0, 0, "second instruction"},
		{"arm64 B", arch.ARM64, 0x1004, 4, 4, 0x1004, 4, ""},
		{"arm64 misaligned", arch.ARM64, 0x1002, 4, 4, 0, 0, "aligned 4-byte"},
		{"arm64 long", arch.ARM64, 0x1000, 16, 4, 0, 0, "aligned 4-byte"},
		{"nothing", arch.AMD64, 0x1000, 0, 4, 0, 0, "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, s, err := verify.ConcurrentWrite(tc.a, tc.addr, "f", tc.n, tc.first)
			if tc.errSubstr == "" {
				require.NoError(t, err)
				require.Equal(t, tc.word, w)
				require.Equal(t, tc.size, s)
				return
			}
			var ce *verify.ConcurrentWriteError
			require.ErrorAs(t, err, &ce)
			require.ErrorIs(t, err, verify.ErrConcurrentWrite)
			require.Equal(t, tc.addr, ce.Addr)
			require.Contains(t, err.Error(), tc.errSubstr)
		})
	}
}

func TestGoRedirect(t *testing.T) {
	require.NoError(t, verify.GoRedirect("f", 1, 2, true, true))
	require.NoError(t, verify.GoRedirect("f", 1, 2, false, false))
	require.NoError(t, verify.GoRedirect("f", 1, 2, false, true))
	err := verify.GoRedirect("main.f", 1, 2, true, false)
	var fe *verify.ForeignCodeError
	require.True(t, errors.As(err, &fe))
	require.Equal(t, "main.f", fe.Symbol)
}
