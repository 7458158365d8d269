package pkg_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

func Example() {
	// The operator's signing key (GenerateKey(crypto/rand.Reader) in real use).
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)

	old := []byte{0x31, 0xc0, 0xc3, 0xcc, 0xcc} // xor eax,eax; ret
	p := &pkg.Package{
		Base: pkg.Base{
			Format: image.FormatPE, Arch: image.AMD64, Module: "app.exe",
			ImageBase: 0x140000000, Size: 0x3000,
			Identity:     image.Identity{Machine: 0x8664, SizeOfImage: 0x3000, CodeHash: sha256.Sum256([]byte("text"))},
			CodeSections: []image.Range{{RVA: 0x1000, Size: 0x1000}},
		},
		Sequence:    1,
		Description: "zero returns 1",
		Functions: []pkg.Function{{
			Name: "zero", OldRVA: 0x1010, OldSize: uint32(len(old)), PreImage: old, OldHash: sha256.Sum256(old),
			Blob: []byte{0xb8, 1, 0, 0, 0, 0xc3}, // mov eax,1; ret
		}},
	}
	if err := p.Sign(priv); err != nil {
		fmt.Println(err)
		return
	}
	file, err := p.Marshal()
	if err != nil {
		fmt.Println(err)
		return
	}

	// The agent: verify first, then read.
	q, err := pkg.Load(file, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		fmt.Println(err)
		return
	}
	id, _ := q.KeyID()
	fmt.Println("signed by", id, "sequence", q.Sequence)
	for _, f := range q.Functions {
		fmt.Printf("%s at %#x: %d bytes\n", f.Name, f.OldRVA, len(f.Blob))
	}
	_, err = pkg.Load(file, pkg.LoadOptions{})
	fmt.Println(err)
	// Output:
	// signed by 139e3940e64b5491 sequence 1
	// zero at 0x1010: 6 bytes
	// pkg: signature by key 139e3940e64b5491: unknown key (not among the trusted keys)
}
