package winapi_test

import (
	"fmt"
	"unsafe"

	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// A CONTEXT for GetThreadContext: aligned as Windows requires, asking for
// the control registers (Rip, Rsp) and the integer registers.
func ExampleNewContextAMD64() {
	c := winapi.NewContextAMD64(winapi.ContextAMD64Control | winapi.ContextAMD64Integer)
	fmt.Println(unsafe.Sizeof(*c), uintptr(unsafe.Pointer(c))%16, unsafe.Offsetof(c.Rip))
	// Output: 1232 0 248
}
