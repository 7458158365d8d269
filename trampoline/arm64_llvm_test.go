package trampoline

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/stretchr/testify/require"
	"golang.org/x/arch/arm64/arm64asm"
)

type a64Emitted struct {
	pc   uint64
	word uint32
	from string // what produced it, for messages
}

// a64EdgeCorpus relocates one instruction of every class so that the
// displacement its new form needs is exactly at, and one step past, each
// reach edge (imm14, imm19, ADR, imm26 of the inverted skip's B, ADRP), plus
// ForceFar, and returns every word produced, with the entry jumps at their
// edges.
func a64EdgeCorpus(t *testing.T) []a64Emitted {
	t.Helper()
	const from = 0x40_0000_0000
	var out []a64Emitted
	add := func(code []byte, at uint64, what string) {
		for off := 0; off+4 <= len(code); off += 4 {
			out = append(out, a64Emitted{at + uint64(off), binary.LittleEndian.Uint32(code[off:]), what})
		}
	}
	for _, d := range []int64{1<<27 - 4, -1 << 27} {
		b, err := EncodeJump(ARM64, from, uint64(from+d))
		require.NoError(t, err)
		add(b, from, "near jump")
	}
	b, err := EncodeFarJump(ARM64, from, 0x1234_5678_9abc)
	require.NoError(t, err)
	add(b[:8], from, "far jump") // the literal is data
	edges := []int64{1<<15 - 4, -1 << 15, 1<<20 - 4, -1 << 20, 1<<27 - 4, -1 << 27, 1<<32 - 4096, -1 << 32}
	for _, w := range a64ClassWords {
		if strings.HasPrefix(w.name, "ldadd") {
			continue
		}
		orig := dec.Decode(w.word, from)
		for _, e := range edges {
			for _, step := range []int64{0, 4, -4, 4096, -4096} {
				// The new form starts at `to`; its PC-relative word may sit
				// one word later (inverted skip, ADRP first): try both.
				for _, shift := range []int64{0, 4} {
					to := uint64(int64(orig.Target)-e-step-shift) &^ 3
					for _, far := range []bool{false, true} {
						rel, err := Relocate(ARM64, a64W(w.word), from, to, &Options{ForceFar: far})
						require.NoError(t, err)
						add(rel.Code, to, fmt.Sprintf("%s to %#x far=%v", w.name, to, far))
					}
				}
			}
		}
	}
	return out
}

var (
	llvmImm = regexp.MustCompile(`#(-?(?:0x[0-9a-f]+|\d+))`)
	llvmMov = regexp.MustCompile(`^x(\d+), #(\d+)(?:, lsl #(\d+))?$`)
)

// TestARM64EmittedFormsLLVM disassembles every word the ARM64 generator
// emits at the reach edges with llvm-mc and compares: every word must be a
// valid instruction, every PC-relative displacement must be the target our
// decoder (and the evaluator of the relocation tests) sees, and every
// MOVZ/MOVK must carry the halfword we meant.
func TestARM64EmittedFormsLLVM(t *testing.T) {
	mc := testenv.NeedHostTool(t, "llvm-mc", "llvm-mc-14")
	corpus := a64EdgeCorpus(t)
	var in bytes.Buffer
	for _, e := range corpus {
		fmt.Fprintf(&in, "0x%02x 0x%02x 0x%02x 0x%02x\n", byte(e.word), byte(e.word>>8), byte(e.word>>16), byte(e.word>>24))
	}
	cmd := exec.Command(mc, "--disassemble", "-triple=aarch64", "-mattr=+hbc")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Empty(t, stderr.String(), "llvm-mc rejected words")
	var lines []string
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, ".") {
			continue
		}
		lines = append(lines, l)
	}
	require.Len(t, lines, len(corpus))
	pcrel, movs := 0, 0
	for k, e := range corpus {
		mn, ops, _ := strings.Cut(lines[k], "\t")
		ours := dec.Decode(e.word, e.pc)
		switch {
		case ours.PCRelative():
			m := llvmImm.FindAllStringSubmatch(ops, -1)
			require.NotEmpty(t, m, lines[k])
			d, err := strconv.ParseInt(m[len(m)-1][1], 0, 64)
			require.NoError(t, err)
			base := e.pc
			if mn == "adrp" {
				base &^= 0xFFF
			}
			require.Equal(t, ours.Target, base+uint64(d), "%s: %#08x at %#x: llvm says %q (%s)", e.from, e.word, e.pc, lines[k], ours)
			pcrel++
		case e.word&0x7F800000 == 0x52800000 || e.word&0x7F800000 == 0x72800000: // MOVZ/MOVK
			m := llvmMov.FindStringSubmatch(ops)
			require.NotNil(t, m, lines[k])
			require.Contains(t, []string{"mov", "movk"}, mn)
			imm, _ := strconv.ParseUint(m[2], 10, 64)
			sh, _ := strconv.ParseUint("0"+m[3], 10, 64)
			hw := uint64(e.word >> 21 & 3)
			if mn == "mov" { // llvm shows MOVZ as mov with the shifted value
				require.Equal(t, uint64(e.word>>5&0xFFFF)<<(16*hw), imm, lines[k])
			} else {
				require.Equal(t, uint64(e.word>>5&0xFFFF), imm, lines[k])
				require.Equal(t, 16*hw, sh, lines[k])
			}
			reg, _ := strconv.Atoi(m[1])
			require.EqualValues(t, e.word&0x1F, reg, lines[k])
			movs++
		default:
			require.Contains(t, []string{"br", "blr", "ldr", "ldrsw", "prfm", "add", "nop", "mov", "ret"}, mn, "%s: %q", e.from, lines[k])
		}
	}
	t.Logf("%d emitted words valid for llvm-mc; %d PC-relative displacements and %d MOVZ/MOVK immediates equal", len(corpus), pcrel, movs)
}

// TestARM64EdgeCorpusEvaluates checks the same corpus's relocations with the
// evaluator, so the edge placements are also semantically right (not only
// well-formed), on every host.
func TestARM64EdgeCorpusEvaluates(t *testing.T) {
	const from = 0x40_0000_0000
	n := 0
	for _, w := range a64ClassWords {
		orig := dec.Decode(w.word, from)
		for _, e := range []int64{1<<15 - 4, -1 << 15, 1<<20 - 4, -1 << 20, 1<<27 - 4, -1 << 27, 1<<32 - 4096, -1 << 32} {
			for _, step := range []int64{0, 4, -4, 4096, -4096} {
				for _, shift := range []int64{0, 4} {
					to := uint64(int64(orig.Target)-e-step-shift) &^ 3
					for _, far := range []bool{false, true} {
						code := a64W(w.word)
						rel, err := Relocate(ARM64, code, from, to, &Options{ForceFar: far})
						require.NoError(t, err)
						require.NoError(t, checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }), "%s to %#x", w.name, to)
						n++
					}
				}
			}
		}
	}
	t.Logf("%d edge relocations evaluated", n)
}

// TestARM64EmittedFormsArm64asm decodes the same edge corpus with arm64asm
// (no host tool needed): every word the generator emits must decode, and
// every PC-relative operand must give our decoder's target.
func TestARM64EmittedFormsArm64asm(t *testing.T) {
	corpus := a64EdgeCorpus(t)
	pcrel, n := 0, 0
	for _, e := range corpus {
		i := dec.Decode(e.word, e.pc)
		if i.Consistent {
			continue // BC.cond (FEAT_HBC) is unknown to arm64asm; llvm-mc checks it
		}
		n++
		require.True(t, i.AsmOK, "%s: arm64asm cannot decode %#08x", e.from, e.word)
		for _, a := range i.Asm.Args {
			r, ok := a.(arm64asm.PCRel)
			if !ok {
				continue
			}
			base := e.pc
			if i.Class == dec.ADRP {
				base &^= 0xFFF
			}
			require.Equal(t, i.Target, base+uint64(r), "%s: %v", e.from, i)
			pcrel++
		}
	}
	t.Logf("%d emitted words decoded by arm64asm, %d PC-relative targets equal", n, pcrel)
}
