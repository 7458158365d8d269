package image_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Find the function containing an address, as a crash handler or a patch
// planner does with a return address.
func ExampleImage_FunctionAt() {
	img, err := image.Open("testdata/textrel-amd64.elf")
	if err != nil {
		fmt.Println(err)
		return
	}
	caller, _ := img.FunctionByName("fx_caller")
	rva := caller.RVA + 5 // somewhere inside fx_caller
	if f, ok := img.FunctionAt(rva); ok {
		fmt.Printf("%s %s: RVA %#x is %s+%#x (function of %d bytes, from %s)\n",
			img.Format, img.Arch, rva, f.Name, rva-f.RVA, f.Size, f.Found)
	}
	if _, ok := img.FunctionAt(caller.End()); !ok {
		fmt.Println("the byte after it is alignment padding, in no function")
	}
	// Output:
	// ELF amd64: RVA 0x11e5 is fx_caller+0x5 (function of 14 bytes, from symbol+export)
	// the byte after it is alignment padding, in no function
}

// Untrusted input never panics: a truncated file is a typed error naming
// the offset where parsing stopped.
func ExampleParse() {
	data, err := os.ReadFile("testdata/textrel-amd64.elf")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = image.Parse(data[:40])
	var fe *image.FormatError
	fmt.Println(errors.Is(err, image.ErrMalformed), errors.As(err, &fe), fe.Offset)
	fmt.Println(err)
	// Output:
	// true true 16
	// image: malformed ELF header (truncated) at offset 0x10
}
