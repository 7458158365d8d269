package amd64_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// Walk a function prologue and print each instruction's PC-relative operand.
func ExampleWalk() {
	code := []byte{
		0xf3, 0x0f, 0x1e, 0xfa, // endbr64
		0xc5, 0xfe, 0x6f, 0x05, 0x10, 0x00, 0x00, 0x00, // vmovdqu ymm0, [rip+0x10]
		0x74, 0x02, // je +2
		0xe8, 0xf0, 0xff, 0xff, 0xff, // call -0x10
		0xc3, // ret
	}
	for in, err := range amd64.Walk(code, 0x401000) {
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%#x %-8v len=%d flow=%v", in.PC, in.Op, in.Len, in.Flow)
		if in.RelKind != amd64.RelNone {
			fmt.Printf(" %v@%d -> %#x", in.RelKind, in.RelOff, in.Target)
		}
		fmt.Println()
	}
	// Output:
	// 0x401000 NOP      len=4 flow=Seq
	// 0x401004 VMOVDQU  len=8 flow=Seq RIPDisp32@4 -> 0x40101c
	// 0x40100c JE       len=2 flow=CondJump Rel8@1 -> 0x401010
	// 0x40100e CALL     len=5 flow=Call Rel32@1 -> 0x401003
	// 0x401013 RET      len=1 flow=Ret
}
