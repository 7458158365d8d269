package trampoline_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/trampoline"
)

// The entry jump from a function to its replacement: 5 bytes within 2 GiB,
// 14 bytes beyond.
func ExampleEncodeJump() {
	near, _ := trampoline.EncodeJump(trampoline.AMD64, 0x140001000, 0x140002000)
	far, _ := trampoline.EncodeJump(trampoline.AMD64, 0x140001000, 0x7ff612340000)
	fmt.Printf("% x\n", near)
	fmt.Printf("% x\n", far)
	// Output:
	// e9 fb 0f 00 00
	// ff 25 00 00 00 00 00 00 34 12 f6 7f 00 00
}

// Moving a prologue that reads a global RIP-relative and branches with a
// rel8 jcc: the displacement is adjusted and the jcc widened to rel32.
func ExampleRelocate() {
	code := []byte{
		0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, // mov rax,[rip+0x1000]
		0x48, 0x85, 0xc0, // test rax,rax
		0x74, 0x20, // je +0x20
	}
	rel, err := trampoline.Relocate(trampoline.AMD64, code, 0x140001000, 0x140101000, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", rel.Code)
	fmt.Println(rel.Boundaries, rel.Rewritten)
	// Output:
	// 48 8b 05 00 10 f0 ff 48 85 c0 0f 84 1c 00 f0 ff
	// [{0 0} {7 7} {10 10}] 2
}

// A detour of a function that starts with ENDBR64: the entry keeps it and
// jumps to the replacement; the trampoline runs the moved instructions and
// jumps back.
func ExampleNewDetour() {
	fn := []byte{
		0xf3, 0x0f, 0x1e, 0xfa, // endbr64
		0x55,             // push rbp
		0x48, 0x89, 0xe5, // mov rbp,rsp
		0x48, 0x83, 0xec, 0x10, // sub rsp,0x10
		0xc9, 0xc3, // leave; ret
	}
	d, err := trampoline.NewDetour(trampoline.AMD64, 0x401000, fn, 0x402000, 0x403000, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("original % x\n", d.Original)
	fmt.Printf("entry    % x\n", d.Entry)
	fmt.Printf("code     % x\n", d.Code)
	// Output:
	// original f3 0f 1e fa 55 48 89 e5 48 83 ec 10
	// entry    f3 0f 1e fa e9 f7 0f 00 00 cc cc cc
	// code     f3 0f 1e fa 55 48 89 e5 48 83 ec 10 e9 fb df ff ff
}
