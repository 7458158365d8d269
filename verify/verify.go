package verify

import (
	"bytes"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Prot is a page protection (read, write, execute bits).
type Prot = proc.Prot

// Protection bits, for callers building Prot values.
const (
	ProtRead  = proc.ProtRead
	ProtWrite = proc.ProtWrite
	ProtExec  = proc.ProtExec
)

// Thread is a stopped thread's state: its ID, program counter and stack
// pointer. NoRegs marks a thread whose registers the OS did not report
// (created suspended, never run): it is not inside any function yet.
type Thread = proc.Thread

// Range is the half-open address range [Start, End) of code a patch
// touches, with the function it belongs to (for error messages).
type Range struct {
	Start, End uint64
	Function   string
	// Bytes, when set, are the original bytes at [Start, End). They let
	// Activeness apply the syscall rewind only where a system call
	// instruction really ends at the thread's PC.
	Bytes []byte
}

// contains reports whether a lies in [Start, End).
func (r Range) contains(a uint64) bool { return a >= r.Start && a < r.End }

// PreImage checks that got, the bytes found at addr, are want, the bytes the
// patch was planned against. A mismatch is a *PreImageError naming symbol.
func PreImage(addr uint64, symbol string, want, got []byte) error {
	var f Failure
	f.PreImage(addr, symbol, want, got)
	return f.Err()
}

// Readback checks that read, the bytes read at addr after a write, are
// wrote. A mismatch is a *ReadbackError.
func Readback(addr uint64, symbol string, wrote, read []byte) error {
	var f Failure
	f.Readback(addr, symbol, wrote, read)
	return f.Err()
}

// ActivenessOptions tune Activeness.
type ActivenessOptions struct {
	// SyscallRewind is how far the kernel may move a thread's PC back when
	// it resumes a restarted system call (2 on Linux x86-64, where a thread
	// stopped inside `syscall` reports the address after it). A PC whose
	// rewound value lies in an overwritten range is active too. Zero: none.
	SyscallRewind uint64
	// Syscalls lists the encodings (each SyscallRewind bytes long) of the
	// instructions the kernel restarts, e.g. x86-64 `syscall` (0f 05) and
	// `int 0x80` (cd 80). With a Range's Bytes known, a rewound PC counts
	// only where its bytes start one of them; without, every rewound PC
	// in a range counts.
	Syscalls [][]byte
}

// LinuxAMD64 is the activeness setting for a stopped Linux x86-64 process.
var LinuxAMD64 = ActivenessOptions{SyscallRewind: 2, Syscalls: [][]byte{{0x0f, 0x05}, {0xcd, 0x80}, {0x0f, 0x34}}}

// Activeness checks that no stopped thread would execute overwritten bytes
// mid-way: a thread is active when its PC lies strictly inside a range (a
// PC at the range's first byte has not started the function's first
// instruction and will run whatever is written there, which is the point),
// or when its PC rewound by opts.SyscallRewind lies anywhere in a range.
// The first active thread found is reported as *ActiveThreadError.
func Activeness(threads []Thread, overwrite []Range, opts ActivenessOptions) error {
	var f Failure
	f.Activeness(threads, overwrite, opts)
	return f.Err()
}

// ActiveIn reports the range in which a thread stopped at pc is active (see
// Activeness), if any.
func ActiveIn(pc uint64, overwrite []Range, opts ActivenessOptions) (Range, bool) {
	for _, r := range overwrite {
		if pc > r.Start && pc < r.End {
			return r, true
		}
		if opts.SyscallRewind != 0 && pc >= opts.SyscallRewind && r.contains(pc-opts.SyscallRewind) && syscallAt(r, pc-opts.SyscallRewind, opts) {
			return r, true
		}
	}
	return Range{}, false
}

// StackScan is the strict activeness check for one thread: stack holds the
// memory read from the thread's stack pointer sp upwards, and every aligned
// word of wordSize bytes (8 on 64-bit targets) is treated as a possible
// return address. A word pointing into a function to be replaced — after its
// first byte and up to its end inclusive, where a call's return address can
// point — is reported as *ActiveThreadError with Stack set. The scan is
// conservative: a stale word or an integer that happens to look like a
// return address also refuses, which only delays the patch.
func StackScan(tid int, sp uint64, stack []byte, functions []Range, wordSize int) error {
	var f Failure
	f.StackScan(tid, sp, stack, functions, wordSize)
	return f.Err()
}

// Protection checks that the page at addr has, after a patch, the
// protection it had before (want), and that it is not writable and
// executable at once.
func Protection(addr uint64, want, got Prot) error {
	var f Failure
	f.Protection(addr, want, got)
	return f.Err()
}

// NoWriteExec checks that a page is not writable and executable at once.
func NoWriteExec(addr uint64, got Prot) error {
	var f Failure
	f.NoWriteExec(addr, got)
	return f.Err()
}

// ConcurrentWrite decides how n bytes at addr can be written while other
// threads may execute them, and returns the naturally aligned word (its
// address and size) to store atomically. firstInst is the length of the
// instruction at addr. Two conditions make the store safe for a running CPU:
//   - the n bytes lie inside one aligned word: x86-64 stores of 8 aligned
//     bytes, and ARM64 stores of 4 aligned bytes, are single-copy atomic, so
//     a fetching CPU sees all old or all new bytes;
//   - the bytes cover only the first instruction (n <= firstInst): a thread
//     that already executed it, and sits at the next instruction, must not
//     find the tail of a jump there.
//
// Anything else is a *ConcurrentWriteError naming symbol.
func ConcurrentWrite(a arch.Arch, addr uint64, symbol string, n, firstInst int) (word uint64, size int, err error) {
	switch a {
	case arch.AMD64:
		size = 8
	case arch.ARM64:
		size = 4
		if n != 4 || addr%4 != 0 {
			return 0, 0, &ConcurrentWriteError{Addr: addr, Symbol: symbol, Why: fmt.Sprintf("ARM64 needs one aligned 4-byte instruction, not %d bytes", n)}
		}
	default:
		return 0, 0, &ConcurrentWriteError{Addr: addr, Symbol: symbol, Why: "unsupported architecture " + a.String()}
	}
	if n <= 0 {
		return 0, 0, &ConcurrentWriteError{Addr: addr, Symbol: symbol, Why: "nothing to write"}
	}
	word = addr &^ uint64(size-1)
	if addr+uint64(n) > word+uint64(size) {
		return 0, 0, &ConcurrentWriteError{Addr: addr, Symbol: symbol, Why: fmt.Sprintf("the %d bytes cross an aligned %d-byte word (entry at offset %d in its word)", n, size, addr-word)}
	}
	if n > firstInst {
		return 0, 0, &ConcurrentWriteError{Addr: addr, Symbol: symbol, Why: fmt.Sprintf("the %d bytes overlap the second instruction (the first is %d bytes): a thread between them would run half a jump", n, firstInst)}
	}
	return word, size, nil
}

// ForeignCodeError reports an in-process redirection of Go code to code
// outside the Go runtime's function table, which breaks Go's unwinder (stack
// growth, GC, panics).
type ForeignCodeError struct {
	Symbol string
	From   uint64
	To     uint64
}

// Error implements error: the message names what ForeignCodeError carries.
func (e *ForeignCodeError) Error() string {
	return fmt.Sprintf("verify: %s at %#x is Go code: redirecting it to %#x, outside the Go function table, would break the Go runtime's unwinder", name(e.Symbol), e.From, e.To)
}

// GoRedirect decides an in-process redirection: Go code (fromGo) may only be
// sent to Go code (toGo); code that is not Go may go anywhere.
func GoRedirect(symbol string, from, to uint64, fromGo, toGo bool) error {
	if fromGo && !toGo {
		return &ForeignCodeError{Symbol: symbol, From: from, To: to}
	}
	return nil
}

// syscallAt reports whether a restartable system call instruction may start
// at a in r: always when r's bytes are unknown, else when the bytes of r
// from a (as far as r goes) begin one of opts.Syscalls.
func syscallAt(r Range, a uint64, opts ActivenessOptions) bool {
	if r.Bytes == nil || len(opts.Syscalls) == 0 {
		return true
	}
	off := a - r.Start
	if off >= uint64(len(r.Bytes)) {
		return true
	}
	have := r.Bytes[off:]
	for _, s := range opts.Syscalls {
		n := min(len(have), len(s))
		if bytes.Equal(have[:n], s[:n]) {
			return true
		}
	}
	return false
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
