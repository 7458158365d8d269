package arm64_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// Decode a BL and move it 1 MiB further on, keeping its target.
func Example() {
	i := arm64.Decode(0x94000010, 0x10000) // bl #0x40
	fmt.Println(i.Class, i.Flow, fmt.Sprintf("%#x", i.Target))

	w, ok := arm64.Retarget(i, 0x110000, i.Target)
	moved := arm64.Decode(w, 0x110000)
	fmt.Println(ok, fmt.Sprintf("%#x", moved.Target))
	// Output:
	// BL call 0x10040
	// true 0x10040
}
