// Package arm64 is hotpatch's one ARM64 instruction decoder: it classifies
// every 32-bit word by bit masks (branches, PC-relative address and literal
// loads, returns, traps), resolves PC-relative targets and re-encodes them.
//
// It wraps golang.org/x/arch/arm64/arm64asm for disassembly text and operand
// details, but never depends on it for PC-relative classification: arm64asm
// fails on LSE atomics and SHA3/SHA512 words (none PC-relative), and a word
// neither decoder knows is reported as Other and copied as is.
package arm64
