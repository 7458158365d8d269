package tour_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// Step 1: load a build. One model for PE and ELF, x86-64 and ARM64.
func Example_load() {
	img, err := image.Open("../../testdata/bin/c-v1-amd64.exe")
	if err != nil {
		fmt.Println(err)
		return
	}
	f, _ := img.FunctionByName("leaf_mix")
	fmt.Println(img.Format, img.Arch, len(img.Functions), "functions")
	fmt.Printf("%s at RVA %#x, %d bytes, found by %s\n", f.Name, f.RVA, f.Size, f.Found)
	// Output:
	// PE amd64 96 functions
	// leaf_mix at RVA 0x1970, 13 bytes, found by pdata+symbol
}

// Step 2: diff two builds. Functions that only moved are Unchanged.
func Example_diff() {
	old, _ := image.Open("../../testdata/bin/c-v1-amd64.exe")
	new, _ := image.Open("../../testdata/bin/c-v2-amd64.exe")
	rep, err := diff.Compare(old, new, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rep.Counts.Changed, "changed:")
	for _, f := range rep.Changed() {
		fmt.Println(" ", f.Name(), f.Reasons[0].Kind)
	}
	// Output:
	// 5 changed:
	//   dispatch instructions
	//   greeting constant
	//   record instructions
	//   scale instructions
	//   slot_get instructions
}

// Step 3: build a package from the diff, sign it, and load it back the way
// an agent does: the signature is checked before anything else is read.
func Example_package() {
	old, _ := image.Open("../../testdata/bin/c-v1-amd64.exe")
	new, _ := image.Open("../../testdata/bin/c-v2-amd64.exe")
	rep, _ := diff.Compare(old, new, nil)

	p, _, err := pkg.Build(old, new, rep, pkg.BuildOptions{Sequence: 1, Module: "c-v1-amd64.exe"})
	if err != nil {
		fmt.Println(err)
		return
	}
	pub, priv, _ := pkg.GenerateKey(rand.Reader)
	if err := p.Sign(priv); err != nil {
		fmt.Println(err)
		return
	}
	file, _ := p.Marshal()

	q, err := pkg.Load(file, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range q.Functions {
		fmt.Printf("%s: old RVA %#x, new body %d bytes\n", f.Name, f.OldRVA, len(f.Blob))
	}
	// Output:
	// greeting: old RVA 0x19d0, new body 8 bytes
	// slot_get: old RVA 0x19e0, new body 30 bytes
	// record: old RVA 0x19f0, new body 25 bytes
	// scale: old RVA 0x1a10, new body 37 bytes
	// dispatch: old RVA 0x1a40, new body 206 bytes
	// fresh_step: old RVA 0x0, new body 13 bytes
}
