package image_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Load an ARM64 PE DLL and look at two functions: one with unwind data in
// .pdata (exact size), and a leaf function without .pdata entry, found by
// its COFF symbol and sized by the gap to the next function, less padding.
func ExampleOpen_pe() {
	img, err := image.Open("testdata/pe/a64.dll")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(img.Format, img.Arch, "exports:", len(img.Exports))
	for _, name := range []string{"big_frame", "leaf_only_called"} {
		f, ok := img.FunctionByName(name)
		if !ok {
			fmt.Println("no", name)
			continue
		}
		fmt.Printf("%s: RVA %#x, %d bytes, found by %s, size from %s\n", f.Name, f.RVA, f.Size, f.Found, f.Extent)
	}
	// Output:
	// PE arm64 exports: 2
	// big_frame: RVA 0x102c, 188 bytes, found by pdata+symbol, size from pdata
	// leaf_only_called: RVA 0x1018, 20 bytes, found by symbol, size from gap
}
