package pkg

import (
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

func TestLayout(t *testing.T) {
	p := samplePackage()
	l := p.Layout()
	// parse 22 bytes, zero 5, helper 6, then the 13-byte constant.
	require.Equal(t, []uint64{0, 32, 48}, l.Blobs)
	require.Equal(t, []uint64{64}, l.Constants)
	require.Equal(t, uint64(80), l.Size)
	require.True(t, p.NeedsNear())
	p.Functions[1].Relocs = nil
	p.Functions[0].Relocs = p.Functions[0].Relocs[:2]
	require.False(t, p.NeedsNear(), "only blob and constant targets")
}

func TestLinkAMD64(t *testing.T) {
	p := samplePackage()
	const module, base = 0x140000000, 0x13ff00000
	l, err := p.Link(module, base)
	require.NoError(t, err)
	lay := p.Layout()
	dec := func(fn, off int) amd64.Inst {
		at := lay.Blobs[fn] + uint64(off)
		in, err := amd64.Decode(l.Code[at:], base+at)
		require.NoError(t, err)
		return in
	}
	require.Equal(t, uint64(base+lay.Constants[0]+2), dec(0, 0).Target, "mov eax,[rip+const+2]")
	require.Equal(t, l.Entries[2], dec(0, 6).Target, "call helper (another blob)")
	require.Equal(t, uint64(module+0x3000), binary.LittleEndian.Uint64(l.Code[lay.Blobs[0]+13:]), "movabs of an old-image address")
	require.Equal(t, uint64(module+0x1100), dec(1, 0).Target, "jmp into the old image")
	require.Equal(t, []byte("hello, world\x00"), l.Code[lay.Constants[0]:lay.Constants[0]+13])
	require.Equal(t, []uint64{base, base + 32, base + 48}, l.Entries)

	// Beyond +-2 GiB a rel32 cannot reach: refused, naming the function.
	_, err = p.Link(module, module+1<<32)
	var le *LinkError
	require.ErrorAs(t, err, &le)
	require.ErrorIs(t, err, ErrLink)
	require.Equal(t, "zero", le.Function)
	require.Equal(t, RelocRel32, le.Kind)
	// Abs32 must fit.
	p.Functions[0].Relocs[2].Kind = RelocAbs32
	_, err = p.Link(module, base)
	require.ErrorAs(t, err, &le)
	require.Contains(t, le.Why, "32 bits")
}

// arm64Package has one function exercising every ARM64 relocation kind.
func arm64Package() *Package {
	words := []uint32{
		0x94000000, // 0x00 bl   -> old image 0x1000
		0x54000000, // 0x04 b.eq -> old image 0x1800
		0x36000000, // 0x08 tbz w0,#0 -> blob +0x20
		0x10000000, // 0x0c adr x0 -> blob +0x24
		0x90000001, // 0x10 adrp x1 -> constant 0 (+8)
		0x91000021, // 0x14 add x1,x1,#lo12
		0xf9400022, // 0x18 ldr x2,[x1,#lo12] (second use of the adrp: 8-aligned)
		0x58000003, // 0x1c ldr x3, literal -> constant 0
		0xd65f03c0, // 0x20 ret
		0xd503201f, // 0x24 nop
	}
	blob := make([]byte, 4*len(words))
	for i, w := range words {
		binary.LittleEndian.PutUint32(blob[4*i:], w)
	}
	old := make([]byte, 32)
	p := samplePackage()
	p.Base.Arch, p.Base.Format = image.ARM64, image.FormatELF
	p.Base.CodeRelocs = nil
	p.Functions = []Function{{
		Name: "f", OldRVA: 0x1000, OldSize: 32, PreImage: old[:16], OldHash: sha256.Sum256(old), Blob: blob,
		Relocs: []Reloc{
			{Offset: 0x00, Kind: RelocBranch26, To: ToImage, Addend: 0x1000},
			{Offset: 0x04, Kind: RelocBranch19, To: ToImage, Addend: 0x1800},
			{Offset: 0x08, Kind: RelocBranch14, To: ToBlob, Addend: 0x20},
			{Offset: 0x0c, Kind: RelocADR, To: ToBlob, Addend: 0x24},
			{Offset: 0x10, Kind: RelocADRP, Aux: 0x14, To: ToConstant, Addend: 8},
			{Offset: 0x18, Kind: RelocLo12, Aux: 0x10, To: ToConstant, Addend: 8},
			{Offset: 0x1c, Kind: RelocLiteral, To: ToConstant},
		},
	}}
	p.Constants = []Constant{{Name: "c", Data: make([]byte, 16)}}
	return p
}

func TestLinkARM64(t *testing.T) {
	p := arm64Package()
	require.NoError(t, p.Validate())
	const module, base = 0x400000, 0x500000
	l, err := p.Link(module, base)
	require.NoError(t, err)
	lay := p.Layout()
	word := func(off int) arm64.Inst {
		return arm64.Decode(binary.LittleEndian.Uint32(l.Code[off:]), base+uint64(off))
	}
	c := base + lay.Constants[0]
	require.Equal(t, uint64(module+0x1000), word(0x00).Target)
	require.Equal(t, uint64(module+0x1800), word(0x04).Target)
	require.Equal(t, uint64(base+0x20), word(0x08).Target)
	require.Equal(t, uint64(base+0x24), word(0x0c).Target)
	pair, ok := arm64.PairTarget(word(0x10), word(0x14))
	require.True(t, ok)
	require.Equal(t, c+8, pair.Target)
	pair, ok = arm64.PairTarget(word(0x10), word(0x18))
	require.True(t, ok)
	require.Equal(t, c+8, pair.Target, "the second use of the ADRP")
	require.Equal(t, c, word(0x1c).Target)

	tests := []struct {
		name         string
		mod          func(p *Package)
		module, base uint64
		why          string
	}{
		{"bl out of reach", func(p *Package) {}, 0x400000, 0x400000 + 200<<20, "26-bit"},
		{"b.cond out of reach", func(p *Package) { p.Functions[0].Relocs[0].Addend = 0x1000 }, 0x400000, 0x400000 + 2<<20, "19-bit"},
		{"misaligned", func(p *Package) { p.Functions[0].Relocs[0].Addend = 0x1002 }, module, base, "aligned"},
		{"ldr scale", func(p *Package) { p.Functions[0].Relocs[4].Addend = 4; p.Functions[0].Relocs[5].Addend = 4 }, module, base, "8-byte access"},
		{"lo12 other page", func(p *Package) { p.Functions[0].Relocs[5].To, p.Functions[0].Relocs[5].Addend = ToImage, 0x1000 }, module, base, "page"},
		{"lo12 not after adrp", func(p *Package) { p.Functions[0].Relocs[5].Aux = 0x0c }, module, base, "not an ADRP"},
		{"pair not add/ldst", func(p *Package) { binary.LittleEndian.PutUint32(p.Functions[0].Blob[0x14:], 0xd503201f) }, module, base, "neither ADD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := arm64Package()
			tt.mod(p)
			require.NoError(t, p.Validate())
			_, err := p.Link(tt.module, tt.base)
			var le *LinkError
			require.ErrorAs(t, err, &le)
			require.Contains(t, le.Why, tt.why)
			require.Equal(t, "f", le.Function)
		})
	}
}

// A conditional branch out of an ARM64 body goes through a B veneer: after
// linking, the branch reaches the veneer and the veneer the target, far
// beyond the conditional branch's own reach.
func TestARM64Veneer(t *testing.T) {
	for _, tt := range []struct {
		word, keep uint32 // keep: the bits that are not the offset
		tbz        bool
	}{{0x54000001, 0xff00001f, false}, {0x37080000, 0xfff8001f, true}} { // b.ne; tbnz w0,#1
		blob := make([]byte, 8)
		binary.LittleEndian.PutUint32(blob[4:], tt.word)
		veneer, why := armVeneer(&blob, 4, tt.tbz)
		require.Empty(t, why)
		require.Equal(t, uint32(8), veneer)
		old := make([]byte, 16)
		p := arm64Package()
		p.Functions[0] = Function{Name: "f", OldRVA: 0x1000, OldSize: 16, PreImage: old, OldHash: sha256.Sum256(old), Blob: blob,
			Relocs: []Reloc{{Offset: veneer, Kind: RelocBranch26, To: ToImage, Addend: 0x1000}}}
		p.Constants = nil
		const module, base = 0x400000, 0x400000 + 64<<20 // 64 MiB: beyond imm19 and imm14
		l, err := p.Link(module, base)
		require.NoError(t, err)
		br := arm64.Decode(binary.LittleEndian.Uint32(l.Code[4:]), base+4)
		require.Equal(t, uint64(base+8), br.Target, "%s", br)
		require.Equal(t, tt.word&tt.keep, binary.LittleEndian.Uint32(l.Code[4:])&tt.keep, "condition, bit and register kept")
		v := arm64.Decode(binary.LittleEndian.Uint32(l.Code[8:]), base+8)
		require.Equal(t, uint64(module+0x1000), v.Target, "%s", v)
	}
	// Out of a veneer's reach.
	blob := make([]byte, 40000)
	binary.LittleEndian.PutUint32(blob[0:], 0x37080000)
	_, why := armVeneer(&blob, 0, true)
	require.Contains(t, why, "too far")
}
