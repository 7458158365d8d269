// Package trampoline generates the machine code a hotpatch writes: entry jumps
// (near and far), instruction runs relocated to a new address with every
// PC-relative reference kept pointing where it did, and detour trampolines.
//
// It handles x86-64 and ARM64 and writes nothing itself: callers get bytes and
// sizes first, so a function too short for a jump is refused before any write.
package trampoline
