package trampoline

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzRelocateARM64 relocates random word runs between random addresses,
// near or forced far, with or without a Map, and checks with the evaluator
// that every instruction of the result reaches the (mapped) original target,
// in-run targets landing on their copies. Refusals must be typed.
func FuzzRelocateARM64(f *testing.F) {
	fx := a64FuzzSeeds()
	for _, code := range fx {
		f.Add(code, uint64(0x10_0000_0000), uint64(0x10_0000_0000+8<<30), uint8(0), int64(0))
		f.Add(code, uint64(0x10_0000_0000), uint64(0x10_0000_4000), uint8(1), int64(0))
		f.Add(code, uint64(0x7f00_0000_0000), uint64(0x7f00_0010_0000), uint8(2), int64(-0x123458))
		f.Add(code, uint64(0x10_0000_0000), uint64(0x10_0000_0040), uint8(8|16|4), int64(0))
		f.Add(code, uint64(0x10_0000_0000), uint64(0x10_0000_0040), uint8(8|16|1), int64(0))
		f.Add(code, uint64(0x10_0000_0000), uint64(0x10_0000_0040), uint8(32|2), int64(0x1238))
		f.Add(code, uint64(0x10_0000_0000), uint64(0x90_0000_0040), uint8(32|2), int64(-0x5000))
	}
	f.Fuzz(func(t *testing.T, code []byte, from, to uint64, flags uint8, mapDelta int64) {
		if len(code) > 512 {
			code = code[:512]
		}
		code = code[:len(code)&^3]
		if len(code) == 0 {
			return
		}
		// User-space addresses (48 bits), 4-byte aligned.
		from &= 1<<48 - 4
		to &= 1<<48 - 4
		opts := &Options{ForceFar: flags&1 != 0}
		mapTarget := func(t uint64) uint64 { return t }
		if flags&2 != 0 {
			mapTarget = func(t uint64) uint64 {
				if t>>3&1 == 1 {
					return (t + uint64(mapDelta)) & (1<<48 - 1)
				}
				return t
			}
			opts.Map = func(t uint64) (uint64, bool) {
				m := mapTarget(t)
				return m, m != t
			}
		}
		if flags&8 != 0 {
			code = a64Steer(code, flags&16 != 0)
		}
		if flags&32 != 0 {
			code = a64SteerPairs(code)
		}
		if flags&4 != 0 {
			opts.Function, opts.FunctionAddr = code, from
		}
		rel, err := Relocate(ARM64, code, from, to, opts)
		if err != nil {
			if !errors.Is(err, ErrUnrelocatable) && !errors.Is(err, ErrBranchIntoMoved) && !errors.Is(err, ErrJumpTable) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		require.NoError(t, checkRelocationA64(code, from, to, rel, mapTarget))
	})
}

// a64FuzzSeeds returns the unit tests' instruction words and a realistic
// prologue as seed runs.
func a64FuzzSeeds() [][]byte {
	var all []uint32
	for _, w := range a64ClassWords {
		all = append(all, w.word)
	}
	return [][]byte{a64W(all...), a64W(a64Prologue...), a64W(a64JumpTable...)}
}

// a64PCRelForms are the opcode bits of every PC-relative class, with the
// field holding its displacement (mask, shift, width).
var a64PCRelForms = []struct {
	mask, value    uint32
	immShift, bits uint
}{
	{0xFC000000, 0x14000000, 0, 26}, // B
	{0xFC000000, 0x94000000, 0, 26}, // BL
	{0xFF000000, 0x54000000, 5, 19}, // B.cond, BC.cond
	{0x7E000000, 0x34000000, 5, 19}, // CBZ, CBNZ
	{0x7E000000, 0x36000000, 5, 14}, // TBZ, TBNZ
	{0x1F000000, 0x10000000, 5, 19}, // ADR, ADRP (immhi)
	{0x3B000000, 0x18000000, 5, 19}, // LDR (literal), PRFM
	{0x7E004000, 0x74000000, 5, 9},  // CB<cc> (FEAT_CMPBR)
}

// a64Steer turns random words into PC-relative ones (the fuzzer rarely hits
// them by chance); with small set, their displacements become a few words
// either way, so targets fall inside the run and on its edges.
func a64Steer(code []byte, small bool) []byte {
	out := make([]byte, len(code))
	for off := 0; off+4 <= len(code); off += 4 {
		w := binary.LittleEndian.Uint32(code[off:])
		f := a64PCRelForms[(w>>8)%uint32(len(a64PCRelForms))]
		w = w&^f.mask | f.value
		if small {
			field := uint32(1)<<f.bits - 1
			imm := uint32(int32(w<<26) >> 26) // low 6 bits, sign-extended
			w = w&^(field<<f.immShift) | (imm&field)<<f.immShift
		}
		binary.LittleEndian.PutUint32(out[off:], w)
	}
	return out
}

// a64SteerPairs turns even words into ADRPs and odd ones into a use of the
// ADRP's register (ADD #imm or a load/store with an unsigned offset, the
// register kept or not), the pairs a Map must treat as one address.
func a64SteerPairs(code []byte) []byte {
	out := make([]byte, len(code))
	var rd uint32
	for off := 0; off+4 <= len(code); off += 4 {
		w := binary.LittleEndian.Uint32(code[off:])
		if off%8 == 0 {
			w = w&^0x9F000000 | 0x90000000 // ADRP
			rd = w & 0x1F
		} else {
			rt := rd
			if w&1 != 0 {
				rt = w >> 1 & 0x1F
			}
			ops := []uint32{0x91000000, 0xF9400000, 0xB9400000, 0x39400000, 0xF9000000, 0x3DC00000, 0xB9800000}
			w = ops[(w>>24)%uint32(len(ops))] | (w>>8&0xFFF)<<10 | rd<<5 | rt
		}
		binary.LittleEndian.PutUint32(out[off:], w)
	}
	return out
}
