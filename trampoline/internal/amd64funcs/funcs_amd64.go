package amd64funcs

import (
	"unsafe"

	"golang.org/x/arch/x86/x86asm"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// Func is one test function: its name, its address in this binary's text,
// and what it returns for an argument, computed in Go.
type Func struct {
	Name string
	Addr uintptr
	Want func(x uintptr) uintptr
	// NeedAVX is set for functions using AVX instructions.
	NeedAVX bool
	// Mid is set for functions whose test run lies between two Split
	// markers in the middle of the function (see SplitOffsets).
	Mid bool
}

// Code returns the function's bytes up to (not including) the End marker
// (a UD2 at an instruction boundary), read from this binary's text.
func (f Func) Code() []byte {
	const max = 4096
	p := f.Addr
	b := unsafe.Slice((*byte)(*(*unsafe.Pointer)(unsafe.Pointer(&p))), max)
	for in, err := range dec.Walk(b, uint64(f.Addr)) {
		if err != nil {
			return nil
		}
		if in.Op == x86asm.UD2 {
			off := int(in.PC - uint64(f.Addr))
			return append([]byte(nil), b[:off]...)
		}
	}
	return nil
}

// SplitOffset returns the offset of the first Split marker in code, or -1.
func SplitOffset(code []byte, addr uintptr) int {
	if s := SplitOffsets(code, addr); len(s) > 0 {
		return s[0]
	}
	return -1
}

// SplitOffsets returns the offsets of every Split marker in code.
func SplitOffsets(code []byte, addr uintptr) []int {
	var out []int
	for in, err := range dec.Walk(code, uint64(addr)) {
		if err != nil {
			return out
		}
		off := int(in.PC - uint64(addr))
		if in.Len == len(Split) && string(code[off:off+in.Len]) == string(Split) {
			out = append(out, off)
		}
	}
	return out
}

// SetReplacementTarget stores the address the Replacement function calls.
func SetReplacementTarget(addr uintptr) { origPtr = addr }

//lint:ignore U1000 read by the replacement function in funcs_amd64.s
var origPtr uintptr

// K1 is the 8-byte constant read RIP-relative by several functions.
const K1 = 0x1111

// addresses is filled by assembly: the address of every function below, in order.
func addresses() *[nfuncs]uintptr

const nfuncs = 22

// ReplacementAddr returns the address of the Replacement function used by the
// detour tests: it calls
// the function pointer set by SetReplacementTarget with its argument and
// adds 1000.
func ReplacementAddr() uintptr { return addresses()[18] }

// HelperAddr is a leaf helper returning x+100.
func HelperAddr() uintptr { return addresses()[0] }

// All returns the test functions.
func All() []Func {
	a := addresses()
	return []Func{
		{Name: "MovRIP", Addr: a[1], Want: func(x uintptr) uintptr { return x + K1 }},
		{Name: "LeaRIP", Addr: a[2], Want: func(x uintptr) uintptr { return x + K1 }},
		{Name: "CmpRIP", Addr: a[3], Want: func(x uintptr) uintptr {
			if x == K1 {
				return 2
			}
			return 1
		}},
		{Name: "CallMemRIP", Addr: a[4], Want: func(x uintptr) uintptr { return x + 101 }},
		{Name: "SSERIP", Addr: a[5], Want: func(x uintptr) uintptr { return x + 2 + 7 }},
		{Name: "AVXRIP", Addr: a[6], Want: func(x uintptr) uintptr { return x + 3 }, NeedAVX: true},
		{Name: "JccRel8Out", Addr: a[7], Want: func(x uintptr) uintptr {
			if int64(x) < 10 {
				return 2
			}
			return 1
		}},
		{Name: "JccRel32Out", Addr: a[8], Want: func(x uintptr) uintptr {
			if int64(x) < 10 {
				return 2
			}
			return 1
		}},
		{Name: "LoopIn", Addr: a[9], Want: func(x uintptr) uintptr { return 3 * (x + 1) }},
		{Name: "JrcxzOut", Addr: a[10], Want: func(x uintptr) uintptr {
			if x == 0 {
				return 7
			}
			return 1
		}},
		{Name: "CallRel32", Addr: a[11], Want: func(x uintptr) uintptr { return x + 101 }},
		{Name: "CallInside", Addr: a[12], Want: func(x uintptr) uintptr { return x + 6 }},
		{Name: "Endbr", Addr: a[13], Want: func(x uintptr) uintptr { return x + K1 }},
		{Name: "ThunkRel32", Addr: a[14], Want: func(x uintptr) uintptr { return x + K1 }},
		{Name: "JmpRel8In", Addr: a[15], Want: func(x uintptr) uintptr {
			if x&1 != 0 {
				return x + 5
			}
			return x + 4
		}},
		{Name: "LoopBackIntoRun", Addr: a[16], Want: func(x uintptr) uintptr { return 2 * x }},
		{Name: "RetEarly", Addr: a[17], Want: func(x uintptr) uintptr { return 0 }},
		{Name: "RedZone", Addr: a[19], Want: func(x uintptr) uintptr { return K1 + x + 12 }},
		{Name: "JccBackOut8", Addr: a[20], Want: func(x uintptr) uintptr { return 3 * (x + 1) }, Mid: true},
		{Name: "JccBackOut32", Addr: a[21], Want: func(x uintptr) uintptr { return 3 * (x + 1) }, Mid: true},
	}
}

// Find returns the function named name.
func Find(name string) (Func, bool) {
	for _, f := range All() {
		if f.Name == name {
			return f, true
		}
	}
	return Func{}, false
}
