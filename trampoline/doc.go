// Package trampoline generates the machine code a hotpatch writes: entry jumps
// (near and far), instruction runs relocated to a new address with every
// PC-relative reference kept pointing where it did, and detour trampolines.
//
// It handles x86-64 and ARM64 and writes nothing itself: callers get bytes and
// sizes first, so a function too short for a jump is refused before any write.
//
// # x86-64
//
// Short branches are widened to rel32; beyond +-2 GiB branches become
// absolute (jmp [rip+0]; imm64 and its jcc/call/loop variants) and a
// [rip+x] operand that no longer reaches goes through a scratch register
// the instruction does not name, saved below the 128-byte red zone (lea
// r,[rip+x] becomes mov r,imm64; call/jmp [rip+x] use the 8 bytes below
// rsp, dead at a call or tail jump). What cannot be moved is refused by
// name (*InstructionError): [eip+x], xbegin or push/pop [rip+x] out of
// reach, call $+5, branches into the middle of an instruction.
//
// Given the whole function (Options.Function), a branch from the rest of it
// into the moved bytes is refused (*BranchIntoError), and so is a jump-table
// dispatch unless Options.JumpTableTargets lists the table's targets: a
// moved `lea base,[rip+table]` keeps pointing at the old table, whose
// entries reach the old code, which stays intact except for the moved
// bytes. A detour keeps ENDBR64 first at the entry (indirect calls must
// still land on it under CET) and starts the trampoline with it.
package trampoline
