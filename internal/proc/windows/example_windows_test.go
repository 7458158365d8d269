//go:build windows && amd64

package winproc_test

import (
	"context"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	winproc "github.com/seed3bccf95f/hotpatch/internal/proc/windows"
)

// The own process as a patch target: allocate a page near the program's
// code, write machine code into it, make it executable, read it back.
func ExampleSelf() {
	p, err := winproc.Self()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	mods, _ := p.Modules()
	exe := mods[0] // the program itself comes first
	a, err := p.AllocNear(context.Background(), exe.Base, 4096, 1<<31-4096, proc.ProtRead|proc.ProtWrite)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Free(a, 4096)
	p.WriteAt([]byte{0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3}, a) // mov eax, 1; ret
	old, _ := p.Protect(a, 4096, proc.ProtRead|proc.ProtExec)
	r, _ := p.Query(a)
	code := make([]byte, 6)
	p.ReadAt(code, a)
	fmt.Println(p.Caps().Self, old, r.Prot, fmt.Sprintf("% x", code))
	// Output: true rw- r-x b8 01 00 00 00 c3
}
