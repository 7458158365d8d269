package pkg

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
)

// testKey is a fixed key pair, so signed test packages are reproducible.
func testKey(seed byte) (ed25519.PublicKey, ed25519.PrivateKey) {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed + byte(i)
	}
	priv := ed25519.NewKeyFromSeed(s)
	return priv.Public().(ed25519.PublicKey), priv
}

// samplePackage is a small x86-64 package using every field: two replaced
// functions, one new one, relocations of every x86-64 kind and target.
func samplePackage() *Package {
	old1 := []byte{0x55, 0x48, 0x89, 0xe5, 0x8b, 0x05, 0, 0, 0, 0, 0x5d, 0xc3}
	old2 := []byte{0x31, 0xc0, 0xc3, 0x90, 0x90, 0x90}
	return &Package{
		Base: Base{
			Format:    image.FormatPE,
			Arch:      image.AMD64,
			Module:    "app.exe",
			ImageBase: 0x140000000,
			Size:      0x9000,
			Identity: image.Identity{
				Machine: 0x8664, TimeDateStamp: 0x5f000000, CheckSum: 0x1234, SizeOfImage: 0x9000,
				CodeView: &image.CodeView{GUID: [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Age: 3},
				BuildID:  []byte{0xde, 0xad},
				CodeHash: sha256.Sum256([]byte("code")),
			},
			CodeSections: []image.Range{{RVA: 0x1000, Size: 0x2000}},
			CodeRelocs:   []CodeReloc{{RVA: 0x1800, Type: 10, Size: 8, File: 0x140003000}},
		},
		Sequence:    2,
		Requires:    1,
		Description: "fix: bounds check in parse (CVE-0000-0000)",
		Functions: []Function{
			{
				Name: "parse", OldRVA: 0x1100, OldSize: uint32(len(old1)), PreImage: old1[:5], OldHash: sha256.Sum256(old1),
				NewRVA: 0x1120, Entry: 0,
				// mov eax,[rip+x]; call rel32; movabs rax,imm64; ret
				Blob: append(append([]byte{0x8b, 0x05, 0, 0, 0, 0, 0xe8, 0, 0, 0, 0, 0x48, 0xb8}, make([]byte, 8)...), 0xc3),
				Relocs: []Reloc{
					{Offset: 2, Kind: RelocRel32, Aux: 6, To: ToConstant, Index: 0, Addend: 2},
					{Offset: 7, Kind: RelocRel32, Aux: 11, To: ToBlob, Index: 2},
					{Offset: 13, Kind: RelocAbs64, To: ToImage, Addend: 0x3000},
				},
			},
			{
				Name: "zero", OldRVA: 0x1200, OldSize: uint32(len(old2)), PreImage: old2, OldHash: sha256.Sum256(old2),
				NewRVA: 0x1220, Entry: 0,
				Blob:   []byte{0xe9, 0, 0, 0, 0},
				Relocs: []Reloc{{Offset: 1, Kind: RelocRel32, Aux: 5, To: ToImage, Addend: 0x1100}},
			},
			{Name: "helper", New: true, NewRVA: 0x1300, Blob: []byte{0xb8, 7, 0, 0, 0, 0xc3}},
		},
		Constants: []Constant{{Name: ".rdata+0x10", Data: []byte("hello, world\x00")}},
	}
}

// syntheticPackage has n functions of size bytes each, calling the next one
// and reading a constant: the benchmark's package.
func syntheticPackage(n, size int) *Package {
	p := samplePackage()
	p.Functions = nil
	p.Base.Size = uint32(0x1000 + n*size*2)
	p.Base.CodeSections = []image.Range{{RVA: 0x1000, Size: p.Base.Size - 0x1000}}
	p.Base.CodeRelocs = nil
	for i := range n {
		old := make([]byte, size)
		for j := range old {
			old[j] = byte(i + j)
		}
		blob := make([]byte, size)
		for j := range blob {
			blob[j] = byte(i * j)
		}
		p.Functions = append(p.Functions, Function{
			Name: fmt.Sprintf("f%04d", i), OldRVA: uint32(0x1000 + i*size), OldSize: uint32(size),
			PreImage: old[:16], OldHash: sha256.Sum256(old), NewRVA: uint32(0x1000 + i*size),
			Blob: blob,
			Relocs: []Reloc{
				{Offset: 1, Kind: RelocRel32, Aux: 5, To: ToBlob, Index: uint32((i + 1) % n)},
				{Offset: 10, Kind: RelocRel32, Aux: 14, To: ToConstant},
				{Offset: 20, Kind: RelocRel32, Aux: 24, To: ToImage, Addend: 0x1000},
			},
		})
	}
	return p
}

// typed reports whether err is one of the errors Load documents.
func typed(err error) bool {
	for _, s := range []error{ErrMalformed, ErrSignature, ErrUnsigned, ErrTooLarge, ErrVersion} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}
