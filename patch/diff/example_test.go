package diff_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
)

// Compare the two builds of the C fixture program (mingw, x86-64 PE): five
// functions changed, one added, one removed; everything that only moved is
// Unchanged. The greeting's instructions are byte-identical: only the string
// it returns differs, and its new body carries that string.
func ExampleCompare() {
	old, err := image.Open("../../testdata/bin/c-v1-amd64.exe")
	if err != nil {
		fmt.Println(err)
		return
	}
	new, err := image.Open("../../testdata/bin/c-v2-amd64.exe")
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := diff.Compare(old, new, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(rep.Summary())
	g := rep.Lookup("greeting")
	fmt.Println(g.Reasons[0])
	r := g.References[0]
	fmt.Printf("%v %v %q\n", r.Kind, r.Resolution, r.Content[:13])
	// Output:
	// PE amd64: 96 -> 96 functions: 90 unchanged, 5 changed, 1 added, 1 removed
	//   changed   dispatch (instructions, call, jump-table)
	//   changed   greeting (constant)
	//   changed   record (instructions, global)
	//   changed   scale (instructions, call)
	//   changed   slot_get (instructions)
	//   added     fresh_step
	//   removed   legacy_step
	// constant at +0x0: "hello from v1" -> "hello from v2"
	// constant carry-constant "hello from v2"
}
