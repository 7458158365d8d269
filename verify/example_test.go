package verify_test

import (
	"errors"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/verify"
)

// A transaction about to overwrite the first 5 bytes of f finds one thread
// stopped two bytes into them: it must resume and retry later.
func ExampleActiveness() {
	threads := []verify.Thread{{ID: 100, PC: 0x401000}, {ID: 101, PC: 0x401002}}
	sites := []verify.Range{{Start: 0x401000, End: 0x401005, Function: "f"}}
	err := verify.Activeness(threads, sites, verify.ActivenessOptions{})
	var active *verify.ActiveThreadError
	if errors.As(err, &active) {
		fmt.Println("busy:", active.TID, active.Function)
	}
	fmt.Println(verify.PreImage(0x401000, "f", []byte{0x55}, []byte{0xe9}))
	// Output:
	// busy: 101 f
	// verify: f at 0x401000: expected bytes 55, found e9
}
