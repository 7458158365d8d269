package fake_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc/fake"
)

// A fake process whose second write fails.
func Example() {
	p := fake.New(arch.AMD64, 0x1000, []byte{0x55, 0xc3})
	p.FailWrite = 2
	fmt.Println(p.WriteAt([]byte{0x90}, 0x1000))
	fmt.Println(p.WriteAt([]byte{0x90}, 0x1001) != nil)
	fmt.Printf("% x\n", p.Snapshot()[0].Data)
	// Output:
	// <nil>
	// true
	// 90 c3
}
