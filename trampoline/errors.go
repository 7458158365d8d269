package trampoline

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is by the typed errors below.
var (
	// ErrTooShort: the function has fewer bytes than the jump needs.
	ErrTooShort = errors.New("function too short for a jump")
	// ErrUnrelocatable: an instruction cannot be moved safely.
	ErrUnrelocatable = errors.New("instruction cannot be relocated")
	// ErrBranchIntoMoved: other code branches into the bytes to be moved.
	ErrBranchIntoMoved = errors.New("branch into moved bytes")
	// ErrUnsupportedArch: the architecture is not AMD64 or ARM64.
	ErrUnsupportedArch = errors.New("unsupported architecture")
	// ErrJumpTable: the function dispatches through a jump table whose
	// targets are unknown, so none can be proven to avoid the moved bytes.
	ErrJumpTable = errors.New("jump table with unknown targets")
)

// ArchError reports an architecture trampoline cannot generate code for.
type ArchError struct{ Arch Arch }

// Error names the architecture.
func (e *ArchError) Error() string { return "trampoline: unsupported architecture " + e.Arch.String() }

// Is makes errors.Is(err, ErrUnsupportedArch) true.
func (e *ArchError) Is(target error) bool { return target == ErrUnsupportedArch }

// TooShortError reports a function with fewer bytes than the jump needs.
type TooShortError struct {
	Function string // name, when the caller gave one
	Addr     uint64
	Size     int // bytes available
	Need     int // bytes the jump needs
}

// Error names the function, its size and the jump's.
func (e *TooShortError) Error() string {
	name := e.Function
	if name == "" {
		name = "function"
	}
	return fmt.Sprintf("trampoline: %s at %#x is %d bytes, a jump needs %d", name, e.Addr, e.Size, e.Need)
}

// Is makes errors.Is(err, ErrTooShort) true.
func (e *TooShortError) Is(target error) bool { return target == ErrTooShort }

// InstructionError reports an instruction that cannot be relocated.
type InstructionError struct {
	Addr uint64 // original address of the instruction
	Inst string // its disassembly
	Why  string
	Err  error // underlying cause (a decode error), if any
}

// Error names the instruction, its address and why.
func (e *InstructionError) Error() string {
	return fmt.Sprintf("trampoline: cannot relocate %q at %#x: %s", e.Inst, e.Addr, e.Why)
}

// Is makes errors.Is(err, ErrUnrelocatable) true.
func (e *InstructionError) Is(target error) bool { return target == ErrUnrelocatable }

// Unwrap returns the underlying cause.
func (e *InstructionError) Unwrap() error { return e.Err }

// JumpTableError reports a jump-table dispatch in the function whose targets
// were not supplied (Options.JumpTableTargets): a case target inside the moved
// bytes would land in the middle of the entry jump.
type JumpTableError struct {
	Dispatch uint64 // address of the indirect jump
	Table    uint64 // address of the table when recognised (lea base,[rip+x]), else 0
}

// Error names the dispatch (and the table when known).
func (e *JumpTableError) Error() string {
	if e.Table != 0 {
		return fmt.Sprintf("trampoline: jump table at %#x dispatched at %#x: its targets are unknown (pass Options.JumpTableTargets)", e.Table, e.Dispatch)
	}
	return fmt.Sprintf("trampoline: jump-table dispatch at %#x: its targets are unknown (pass Options.JumpTableTargets)", e.Dispatch)
}

// Is makes errors.Is(err, ErrJumpTable) true.
func (e *JumpTableError) Is(target error) bool { return target == ErrJumpTable }

// BranchIntoError reports a branch from outside the moved run into it.
type BranchIntoError struct {
	From uint64 // address of the branch instruction
	To   uint64 // its target, inside the moved bytes
}

// Error names the branch and its target.
func (e *BranchIntoError) Error() string {
	return fmt.Sprintf("trampoline: branch at %#x targets %#x inside the moved bytes", e.From, e.To)
}

// Is makes errors.Is(err, ErrBranchIntoMoved) true.
func (e *BranchIntoError) Is(target error) bool { return target == ErrBranchIntoMoved }
