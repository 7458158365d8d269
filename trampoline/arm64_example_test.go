package trampoline_test

import (
	"encoding/binary"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/trampoline"
)

// Moving an ARM64 CBZ 8 GiB away: out of its ±1 MiB reach, it becomes an
// inverted CBNZ skipping an absolute branch through x16:
//
//	cbnz x0, #16; mov x16, #0x100; movk x16, #0x10, lsl #32; br x16
func ExampleRelocate_arm64() {
	const from, to = 0x10_0000_0000, 0x12_0000_0000
	code := binary.LittleEndian.AppendUint32(nil, 0xb4000800) // cbz x0, from+0x100
	rel, err := trampoline.Relocate(trampoline.ARM64, code, from, to, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for off := 0; off < len(rel.Code); off += 4 {
		fmt.Printf("%08x\n", binary.LittleEndian.Uint32(rel.Code[off:]))
	}
	// Output:
	// b5000080
	// d2802010
	// f2c00210
	// d61f0200
}
