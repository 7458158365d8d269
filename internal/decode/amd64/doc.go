// Package amd64 is the one x86-64 instruction decoder every hotpatch package
// uses: golang.org/x/arch/x86/x86asm with its traps fixed (truncated input,
// VEX/EVEX RIP-relative operands, VZEROUPPER length, ENDBR64), plus control
// flow and PC-relative operand classification for relocation.
package amd64
