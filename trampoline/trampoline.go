package trampoline

import (
	"github.com/seed3bccf95f/hotpatch/internal/arch"
)

// Arch is the instruction-set architecture code is generated for.
type Arch = arch.Arch

// Supported architectures.
const (
	AMD64 = arch.AMD64
	ARM64 = arch.ARM64
)

// Options tune Relocate and NewDetour. The zero value is valid.
type Options struct {
	// Map retargets a PC-relative reference whose target lies outside the
	// moved run: given the target the original code reached, it returns the
	// address the relocated code must reach instead. A new function body uses
	// it to point at the old image's functions and data. Nil, or ok == false,
	// keeps the original absolute target.
	Map func(target uint64) (newTarget uint64, ok bool)

	// Function, when set, is the whole function the run was taken from,
	// starting at FunctionAddr. Relocate then refuses when any other part of
	// the function branches into the moved bytes (past their first byte),
	// since that branch would land in the middle of the entry jump.
	Function     []byte
	FunctionAddr uint64

	// JumpTableTargets lists every address the function's jump tables can
	// branch to, when the caller has read the tables (from the image). Without
	// it, Relocate refuses (*JumpTableError) a Function that dispatches through
	// a table, since a case target inside the moved bytes cannot be excluded;
	// with it, those targets are checked like direct branches.
	JumpTableTargets []uint64

	// entryJump, set by NewDetour when an instruction stays first at the
	// entry (ENDBR64), is where the entry jump starts: a branch from the
	// function to it lands on the jump as a branch to the entry would, so
	// it is allowed like a branch to the first byte.
	entryJump uint64

	// ForceFar makes every rewritten branch and reference use the absolute
	// (far) form even when the near form would reach. Tests use it to run
	// the far paths without allocating memory 2 GiB away.
	ForceFar bool
}

// Boundary pairs the start of an instruction in the original run (Old, an
// offset from `from`) with the start of its copy in the relocated code (New,
// an offset from `to`). A thread stopped at Old can be moved to New.
type Boundary struct {
	Old, New int
}

// Relocation is a run of instructions re-encoded for a new address.
type Relocation struct {
	Code []byte
	// Boundaries lists every original instruction, in order.
	Boundaries []Boundary
	// Rewritten counts instructions whose encoding changed (widened branch,
	// absolute sequence, adjusted displacement).
	Rewritten int
}

// NewOffset returns the offset in the relocated code of the instruction that
// started at old in the original run.
func (r *Relocation) NewOffset(old int) (int, bool) {
	for _, b := range r.Boundaries {
		if b.Old == old {
			return b.New, true
		}
	}
	return 0, false
}

func unsupportedArch(a Arch) error { return &ArchError{Arch: a} }

// NearJumpSize is the size of the short-reach entry jump: 5 bytes (jmp rel32)
// on x86-64, 4 bytes (B) on ARM64.
func NearJumpSize(a Arch) int {
	switch a {
	case AMD64:
		return 5
	case ARM64:
		return 4
	}
	return 0
}

// FarJumpSize is the size of the any-distance entry jump: 14 bytes
// (jmp [rip+0]; imm64) on x86-64, 16 bytes (ldr x16, #8; br x16; imm64) on ARM64.
func FarJumpSize(a Arch) int {
	switch a {
	case AMD64:
		return 14
	case ARM64:
		return 16
	}
	return 0
}
