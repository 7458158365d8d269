package image

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFinishFunctions(t *testing.T) {
	text := make([]byte, 0x100)
	for i := range text {
		text[i] = byte(i)
	}
	img := &Image{
		Sections: []Section{
			{Name: ".data", RVA: 0x2000, Size: 0x100, Flags: SectionRead | SectionWrite, Data: make([]byte, 0x100)},
			{Name: ".text", RVA: 0x1000, Size: 0x100, Flags: SectionRead | SectionExec, Data: text},
		},
		Functions: []Function{
			// Three reports of 0x1000: pdata (no name), symbol, export.
			{Name: "exp_name", RVA: 0x1000, Found: FromExport},
			{RVA: 0x1000, Size: 0x20, Found: FromPdata, Extent: FromPdata, Unwind: 0x3000},
			{Name: "sym", RVA: 0x1000, Size: 0x30, Found: FromSymbol, Extent: FromSymbol},
			// Symbol whose size runs into the next start: truncated.
			{Name: "outer", RVA: 0x1040, Size: 0x40, Found: FromSymbol, Extent: FromSymbol},
			{Name: "inner", RVA: 0x1060, Size: 0x10, Found: FromSymbol, Extent: FromSymbol},
			// Call target without a size: gap up to the next start.
			{RVA: 0x1080, Found: FromCallTarget},
			{Name: "bb", RVA: 0x10a0, Found: FromCallTarget},
			{Name: "aa", RVA: 0x10a0, Found: FromCallTarget},
			{Name: "c", RVA: 0x10a0, Found: FromCallTarget},
			// Runs past the end of .text: clipped.
			{Name: "last", RVA: 0x10f0, Size: 0x40, Found: FromSymbol, Extent: FromSymbol},
			// Not in code: dropped.
			{Name: "data_fn", RVA: 0x2010, Size: 8, Found: FromSymbol, Extent: FromSymbol},
			{Name: "nowhere", RVA: 0x9000, Found: FromExport},
		},
		Symbols: []Symbol{{Name: "b", RVA: 2}, {Name: "a", RVA: 2}, {Name: "z", RVA: 1}},
		Relocs:  []Reloc{{RVA: 9}, {RVA: 3}},
		Exports: []Export{{Ordinal: 5}, {Ordinal: 1}},
	}
	require.NoError(t, finish(img))

	want := []Function{
		{Name: "sym", RVA: 0x1000, Size: 0x20, Found: FromPdata | FromSymbol | FromExport, Extent: FromPdata, Unwind: 0x3000},
		{Name: "outer", RVA: 0x1040, Size: 0x20, Found: FromSymbol, Extent: FromGap},
		{Name: "inner", RVA: 0x1060, Size: 0x10, Found: FromSymbol, Extent: FromSymbol},
		{RVA: 0x1080, Size: 0x20, Found: FromCallTarget, Extent: FromGap},
		{Name: "c", RVA: 0x10a0, Size: 0x50, Found: FromCallTarget, Extent: FromGap},
		{Name: "last", RVA: 0x10f0, Size: 0x10, Found: FromSymbol, Extent: FromGap},
	}
	require.Equal(t, want, img.Functions)
	require.Len(t, img.Dropped, 2)
	require.Equal(t, "data_fn", img.Dropped[0].Name)

	require.Equal(t, []string{"z", "a", "b"}, []string{img.Symbols[0].Name, img.Symbols[1].Name, img.Symbols[2].Name})
	require.Equal(t, uint32(3), img.Relocs[0].RVA)
	require.Equal(t, uint32(1), img.Exports[0].Ordinal)

	f, ok := img.FunctionByName("sym")
	require.True(t, ok)
	require.Equal(t, uint32(0x1000), f.RVA)
	_, ok = img.FunctionByName("exp_name")
	require.False(t, ok, "the symbol name wins over the export name")

	require.Equal(t, sha256.Sum256(text), img.Identity.CodeHash)
}

func TestFinishCodeHash(t *testing.T) {
	mk := func(secs ...Section) *Image {
		img := &Image{Sections: secs}
		require.NoError(t, finish(img))
		return img
	}
	x := SectionRead | SectionExec
	// Zero padding to the mapped size, file data cut to it, non-code ignored,
	// section order kept.
	a := mk(Section{RVA: 0x1000, Size: 8, Flags: x, Data: []byte{1, 2, 3}},
		Section{RVA: 0x3000, Size: 4, Flags: SectionRead, Data: []byte{9}},
		Section{RVA: 0x2000, Size: 2, Flags: x, Data: []byte{4, 5, 6, 7}})
	require.Equal(t, sha256.Sum256([]byte{1, 2, 3, 0, 0, 0, 0, 0, 4, 5}), a.Identity.CodeHash)
	// A large zero-filled code section hashes as its zeros.
	b := mk(Section{RVA: 0x1000, Size: 200000, Flags: x})
	require.Equal(t, sha256.Sum256(make([]byte, 200000)), b.Identity.CodeHash)

	err := finish(&Image{Sections: []Section{{RVA: 0, Size: 0xffffffff, Flags: x}}})
	require.ErrorIs(t, err, ErrUnsupported)
}
