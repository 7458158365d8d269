// Package amd64funcs holds real x86-64 functions, written in Go assembly with
// the SysV C calling convention (arguments in DI, SI; result in AX), that the
// trampoline tests relocate, detour and call through internal/execmem.
//
// Each function covers one PC-relative class. Two byte markers delimit what a
// test moves: Split (a 5-byte NOP: the run to relocate ends before it) and End
// (UD2 after the last RET: the function's code ends before it).
package amd64funcs

// Split is the 5-byte NOP (nopl 0x0(%rax,%rax,1)) placed where a test's
// relocated run ends; execution resumes there in the original.
var Split = []byte{0x0f, 0x1f, 0x44, 0x00, 0x00}

// End is the UD2 placed after a function's last instruction.
var End = []byte{0x0f, 0x0b}
