package main

import "os"

// What an operator sees first: which functions differ between two builds
// of the C fixture program (mingw, x86-64 PE), and what the new body of one
// of them reaches in the old image.
func Example_diff() {
	run([]string{"diff", "-q", "../../testdata/bin/c-v1-amd64.exe", "../../testdata/bin/c-v2-amd64.exe"}, os.Stdout, os.Stderr)
	// Output:
	// PE amd64: 96 -> 96 functions: 90 unchanged, 5 changed, 1 added, 1 removed
	//   changed   dispatch (instructions, call, jump-table)
	//   changed   greeting (constant)
	//   changed   record (instructions, global)
	//   changed   scale (instructions, call)
	//   changed   slot_get (instructions)
	//   added     fresh_step
	//   removed   legacy_step
}

// The identity a patch binds to, the sections, and where the function list
// came from: .pdata alone misses leaf functions, symbols complete it.
func Example_inspect() {
	run([]string{"inspect", "../../testdata/bin/c-v1-amd64.exe"}, os.Stdout, os.Stderr)
	// Output:
	// ../../testdata/bin/c-v1-amd64.exe: PE amd64, base 0x140000000, entry 0x14d0, size 0xe000
	// identity: machine 0x8664, timestamp 0x0, checksum 0xc0c2, size of image 0xe000, codeview 4ac59fbcc0b056f51a0b9a077135db6d/1
	//   code sha256 d17ae8a6f4b33490ea1e4244651ae887f2216ab9e5e4af02f786d9b2e52115ee
	// 11 sections:
	//   .text      0x00001000   0x2138 r-x
	//   .data      0x00004000     0xf0 rw-
	//   .rdata     0x00005000    0xa30 r--
	//   .buildid   0x00006000     0x35 r--
	//   .pdata     0x00007000    0x33c r--
	//   .xdata     0x00008000    0x24c r--
	//   .bss       0x00009000    0x3c0 rw-u
	//   .idata     0x0000a000    0x630 rw-
	//   .CRT       0x0000b000     0x60 rw-
	//   .tls       0x0000c000     0x10 rw-
	//   .reloc     0x0000d000     0x80 r--
	// 592 symbols, 43 imports, 0 exports, 45 base relocations
	// 96 functions (found by: call 1, pdata+symbol 68, pdata+symbol+entry 1, symbol 26)
}
