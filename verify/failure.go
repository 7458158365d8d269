package verify

import (
	"encoding/binary"
	"fmt"
)

// Failure holds the first failed check of a series without allocating, for
// code that runs while the target's threads are suspended: an allocation
// there may wait for a lock (the Go heap's, or the process heap's) that a
// suspended thread holds, and never return. Its methods make the same
// decisions as the functions of the same name and report true when the
// check passes; a failure is recorded (only the first one) and Err turns it
// into the typed error once the threads run again.
//
// Byte slices are kept, not copied, until Err: the caller must not change
// them in between.
type Failure struct {
	kind   failKind
	addr   uint64
	symbol string
	want   []byte
	got    []byte
	tid    int
	pc     uint64
	slot   uint64
	stack  bool
	wantP  Prot
	gotP   Prot
	wxOnly bool
	word   int
}

type failKind uint8

const (
	failNone failKind = iota
	failPreImage
	failReadback
	failActive
	failProtection
	failWordSize
)

// Failed reports whether a check failed.
func (f *Failure) Failed() bool { return f.kind != failNone }

// Reset forgets the recorded failure.
func (f *Failure) Reset() { *f = Failure{} }

// Err returns the recorded failure as the typed error the function of the
// same name returns (*PreImageError, *ActiveThreadError, ...), or nil.
func (f *Failure) Err() error {
	switch f.kind {
	case failPreImage:
		return &PreImageError{Addr: f.addr, Symbol: f.symbol, Want: clone(f.want), Got: clone(f.got)}
	case failReadback:
		return &ReadbackError{Addr: f.addr, Symbol: f.symbol, Wrote: clone(f.want), Read: clone(f.got)}
	case failActive:
		return &ActiveThreadError{TID: f.tid, PC: f.pc, Function: f.symbol, Stack: f.stack, Slot: f.slot}
	case failProtection:
		if f.wxOnly {
			return &ProtectionError{Addr: f.addr, Got: f.gotP, Why: "writable and executable"}
		}
		return &ProtectionError{Addr: f.addr, Want: f.wantP, Got: f.gotP, Why: fmt.Sprintf("it was %s before the patch", f.wantP)}
	case failWordSize:
		return fmt.Errorf("verify: stack word size %d: want 4 or 8", f.word)
	}
	return nil
}

// PreImage is the function PreImage.
func (f *Failure) PreImage(addr uint64, symbol string, want, got []byte) bool {
	if string(want) == string(got) {
		return true
	}
	f.record(Failure{kind: failPreImage, addr: addr, symbol: symbol, want: want, got: got})
	return false
}

// Readback is the function Readback.
func (f *Failure) Readback(addr uint64, symbol string, wrote, read []byte) bool {
	if string(wrote) == string(read) {
		return true
	}
	f.record(Failure{kind: failReadback, addr: addr, symbol: symbol, want: wrote, got: read})
	return false
}

// Activeness is the function Activeness.
func (f *Failure) Activeness(threads []Thread, overwrite []Range, opts ActivenessOptions) bool {
	for _, t := range threads {
		if t.NoRegs {
			continue
		}
		if r, ok := ActiveIn(t.PC, overwrite, opts); ok {
			f.record(Failure{kind: failActive, tid: t.ID, pc: t.PC, symbol: r.Function})
			return false
		}
	}
	return true
}

// StackScan is the function StackScan.
func (f *Failure) StackScan(tid int, sp uint64, stack []byte, functions []Range, wordSize int) bool {
	if wordSize != 8 && wordSize != 4 {
		f.record(Failure{kind: failWordSize, word: wordSize})
		return false
	}
	// Words are aligned on absolute addresses: skip to the first aligned one.
	skip := int((uint64(wordSize) - sp%uint64(wordSize)) % uint64(wordSize))
	for off := skip; off+wordSize <= len(stack); off += wordSize {
		var w uint64
		if wordSize == 8 {
			w = binary.LittleEndian.Uint64(stack[off:])
		} else {
			w = uint64(binary.LittleEndian.Uint32(stack[off:]))
		}
		for _, fn := range functions {
			if w > fn.Start && w < fn.End {
				f.record(Failure{kind: failActive, tid: tid, pc: w, symbol: fn.Function, stack: true, slot: sp + uint64(off)})
				return false
			}
		}
	}
	return true
}

// Protection is the function Protection.
func (f *Failure) Protection(addr uint64, want, got Prot) bool {
	if !f.NoWriteExec(addr, got) {
		return false
	}
	if want != got {
		f.record(Failure{kind: failProtection, addr: addr, wantP: want, gotP: got})
		return false
	}
	return true
}

// NoWriteExec is the function NoWriteExec.
func (f *Failure) NoWriteExec(addr uint64, got Prot) bool {
	if got&ProtWrite != 0 && got&ProtExec != 0 {
		f.record(Failure{kind: failProtection, addr: addr, gotP: got, wxOnly: true})
		return false
	}
	return true
}

// record keeps the first failure.
func (f *Failure) record(x Failure) {
	if f.kind == failNone {
		*f = x
	}
}
