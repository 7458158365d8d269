package patch

import (
	"encoding/binary"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// In-process patching where other threads cannot be stopped (Linux self):
// every change is one compare-and-swap of a naturally aligned word, so a
// CPU executing the code sees either all old or all new bytes, and covers
// only the function's first instruction, so no thread can sit between two
// of the bytes written. Which writes qualify is verify.ConcurrentWrite's
// decision. On x86-64 an entry that does not qualify for the 5-byte jump
// may still take a 2-byte short jump to a 5-byte jump placed in the int3
// padding before the function (itself one aligned word).
//
// Activeness cannot be checked (threads keep running): a thread already
// past the first instruction finishes the old body, which stays intact.

// casWriter is what the in-process back-end offers beyond proc.Process.
type casWriter interface {
	CompareAndSwap(addr uint64, size int, old, new uint64) (bool, error)
}

// padSite is a 5-byte jump in the padding before a function (x86-64).
type padSite struct {
	addr     uint64 // the jump's address
	word     uint64 // its aligned 8-byte word
	oldWord  uint64
	newWord  uint64
	wasJump  bool // the padding already held a jump of an earlier transaction
	original uint64
}

func (t *Target) planConcurrent(o *op) error {
	fn := o.fn
	if _, ok := t.p.(casWriter); !ok {
		return &NeedStopError{Function: fn.Name, Addr: fn.Addr, Why: "the back-end can neither stop threads nor store atomically"}
	}
	head := make([]byte, 16)
	if err := t.p.ReadAt(head, fn.Addr); err != nil {
		return &SiteError{Op: "read", Function: fn.Name, Addr: fn.Addr, Err: err}
	}
	first, err := trampoline.PrologueLength(t.arch, head, fn.Addr, 1)
	if err != nil {
		return &SiteError{Op: "decode", Function: fn.Name, Addr: fn.Addr, Err: err}
	}
	word, size, err := verify.ConcurrentWrite(t.arch, fn.Addr, fn.Name, len(o.entry), first)
	if err != nil && t.arch == arch.AMD64 && len(o.entry) == 5 {
		if perr := t.planPad(o, first); perr == nil {
			return nil
		}
	}
	if err != nil {
		return err
	}
	return t.setWord(o, word, size)
}

// setWord computes the old and new value of the word holding o's entry.
func (t *Target) setWord(o *op, word uint64, size int) error {
	buf := make([]byte, size)
	if err := t.p.ReadAt(buf, word); err != nil {
		return &SiteError{Op: "read", Function: o.fn.Name, Addr: word, Err: err}
	}
	off := o.fn.Addr - word
	o.orig = append([]byte(nil), buf[off:off+uint64(len(o.entry))]...)
	if o.fn.Expect != nil {
		if len(o.fn.Expect) < len(o.entry) {
			return fmt.Errorf("patch: %s: Expect has %d bytes, the patch overwrites %d", o.fn.Name, len(o.fn.Expect), len(o.entry))
		}
		if err := verify.PreImage(o.fn.Addr, o.fn.Name, o.fn.Expect[:len(o.entry)], o.orig); err != nil {
			return err
		}
	}
	o.word, o.wordSize = word, size
	o.oldWord = le(buf)
	copy(buf[off:], o.entry)
	o.newWord = le(buf)
	return nil
}

// planPad places the jump in the int3 padding before the function and a
// short jump to it at the entry.
func (t *Target) planPad(o *op, first int) error {
	fn := o.fn
	if _, _, err := verify.ConcurrentWrite(arch.AMD64, fn.Addr, fn.Name, 2, first); err != nil {
		return err
	}
	ps := t.pads[fn.Addr]
	if ps == nil {
		const back = 126 // a short jump from entry+2 reaches entry-126
		lo := fn.Addr - back
		before := make([]byte, back)
		if err := t.p.ReadAt(before, lo); err != nil {
			return err
		}
		// The padding is the run of int3 right before the entry: a thread
		// could only ever reach those bytes to trap.
		run := 0
		for run < back && before[back-1-run] == 0xcc {
			run++
		}
		found := false
		for p := fn.Addr - 5; p >= fn.Addr-uint64(run) && p >= lo; p-- {
			if p%8 <= 3 {
				ps = &padSite{addr: p, word: p &^ 7}
				found = true
				break
			}
		}
		if !found {
			return fmt.Errorf("no 5 aligned bytes of int3 padding before %s", fn.Name)
		}
		w := make([]byte, 8)
		if err := t.p.ReadAt(w, ps.word); err != nil {
			return err
		}
		ps.original = le(w)
	}
	jump, err := trampoline.EncodeJump(arch.AMD64, ps.addr, o.to)
	if err != nil || len(jump) != 5 {
		return fmt.Errorf("padding jump does not reach: %v", err)
	}
	w := make([]byte, 8)
	if err := t.p.ReadAt(w, ps.word); err != nil {
		return err
	}
	pad := &padSite{addr: ps.addr, word: ps.word, original: ps.original, oldWord: le(w)}
	pad.wasJump = pad.oldWord != ps.original
	copy(w[ps.addr-ps.word:], jump)
	pad.newWord = le(w)
	short := []byte{0xeb, byte(int8(int64(ps.addr) - int64(fn.Addr+2)))}
	o.entry = short
	o.pad = pad
	word, size, _ := verify.ConcurrentWrite(arch.AMD64, fn.Addr, fn.Name, 2, first)
	return t.setWord(o, word, size)
}

func (t *Target) commitConcurrent(ops []*op) error {
	cw := t.p.(casWriter)
	for i, o := range ops {
		err := t.casOp(cw, o, false)
		if err != nil {
			for j := i - 1; j >= 0; j-- {
				if uerr := t.casOp(cw, ops[j], true); uerr != nil {
					return &RestoreError{Err: err, Restore: uerr}
				}
			}
			return err
		}
	}
	for _, o := range ops {
		if o.pad != nil {
			t.pads[o.fn.Addr] = o.pad
		}
	}
	return nil
}

func (t *Target) rollbackConcurrent(ops []*op) error {
	cw := t.p.(casWriter)
	for i := len(ops) - 1; i >= 0; i-- {
		if err := t.casOp(cw, ops[i], true); err != nil {
			return err
		}
	}
	return nil
}

// casOp applies (or with undo, reverts) one op: padding jump first, then the
// entry word; on undo the entry first, and the padding only when it held an
// earlier jump (int3 is never written back: a thread preempted between the
// short jump and the padding jump would trap).
func (t *Target) casOp(cw casWriter, o *op, undo bool) error {
	old, nw := o.oldWord, o.newWord
	if undo {
		old, nw = nw, old
	}
	if o.pad != nil && !undo {
		if _, err := cw.CompareAndSwap(o.pad.word, 8, o.pad.oldWord, o.pad.newWord); err != nil {
			return &SiteError{Op: "write", Function: o.fn.Name + " (padding)", Addr: o.pad.addr, Err: err}
		}
		// A failed swap means the padding already holds the new jump
		// (an earlier transaction's, to the same place) or another one:
		// the readback below decides.
		if err := t.readWord(o.fn.Name+" (padding)", o.pad.word, 8, o.pad.newWord); err != nil {
			return err
		}
	}
	ok, err := cw.CompareAndSwap(o.word, o.wordSize, old, nw)
	if err != nil {
		return &SiteError{Op: "write", Function: o.fn.Name, Addr: o.fn.Addr, Err: err}
	}
	if !ok {
		cur := make([]byte, o.wordSize)
		_ = t.p.ReadAt(cur, o.word)
		want := make([]byte, o.wordSize)
		putLE(want, old)
		return verify.PreImage(o.word, o.fn.Name, want, cur)
	}
	if o.pad != nil && undo && o.pad.wasJump {
		if _, err := cw.CompareAndSwap(o.pad.word, 8, o.pad.newWord, o.pad.oldWord); err != nil {
			return &SiteError{Op: "write", Function: o.fn.Name + " (padding)", Addr: o.pad.addr, Err: err}
		}
	}
	_ = t.p.FlushICache(o.word, uint64(o.wordSize))
	return t.readWord(o.fn.Name, o.word, o.wordSize, nw)
}

func (t *Target) readWord(name string, addr uint64, size int, want uint64) error {
	got := make([]byte, size)
	if err := t.p.ReadAt(got, addr); err != nil {
		return &SiteError{Op: "read", Function: name, Addr: addr, Err: err}
	}
	w := make([]byte, size)
	putLE(w, want)
	return verify.Readback(addr, name, w, got)
}

func le(b []byte) uint64 {
	if len(b) == 4 {
		return uint64(binary.LittleEndian.Uint32(b))
	}
	return binary.LittleEndian.Uint64(b)
}

func putLE(b []byte, v uint64) {
	if len(b) == 4 {
		binary.LittleEndian.PutUint32(b, uint32(v))
		return
	}
	binary.LittleEndian.PutUint64(b, v)
}
