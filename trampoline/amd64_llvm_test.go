package trampoline

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

var (
	odLine   = regexp.MustCompile(`^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$`)
	odRIP    = regexp.MustCompile(`(-?\d*)\(%rip\)`)
	odBranch = regexp.MustCompile(`^0x([0-9a-f]+)`)
	// odPrefixes are printed by llvm-objdump on a line of their own.
	odPrefixes = map[string]bool{"lock": true, "rep": true, "repne": true, "data16": true, "cs": true, "ds": true, "notrack": true, "bnd": true}
)

// TestAMD64EmittedFormsLLVM is the second, independent oracle for every
// instruction the relocator and jump encoder emit (all runs of
// TestAMD64RelocateForms in every mode, entry jumps at the reach edges):
// llvm-objdump must decode the same instruction boundaries, and the same branch
// displacements and [rip+disp32] displacements, as our decoder.
func TestAMD64EmittedFormsLLVM(t *testing.T) {
	objdump := testenv.NeedHostTool(t, "llvm-objdump-14", "llvm-objdump")
	objcopy := testenv.NeedHostTool(t, "llvm-objcopy-14", "llvm-objcopy")
	const from = 0x5555_0000_0000
	var insts []dec.Inst
	var stream []byte
	add := func(chunk []byte, pc uint64) {
		_, is, err := amdChunkTargets(chunk, pc)
		require.NoError(t, err)
		for _, in := range is {
			off := in.PC - pc
			insts = append(insts, in)
			stream = append(stream, chunk[off:off+uint64(in.Len)]...)
		}
	}
	for _, r := range amdRuns {
		if strings.HasPrefix(r.name, "hint nop") {
			continue // llvm 14 rejects the reserved-NOP space 0F 1E /r (the CPU runs it as a NOP)
		}
		for _, to := range []uint64{from + 0x100_0000, from + 0x10_0000_0000, 0x10_0000} {
			for _, ff := range []bool{false, true} {
				rel, err := Relocate(AMD64, r.code, from, to, &Options{ForceFar: ff})
				if err != nil {
					continue // refusals are tested elsewhere
				}
				add(rel.Code, to)
			}
		}
	}
	for _, d := range []int64{0, 1, -1, 127, -128, 1<<31 - 1, -1 << 31, 1 << 31, -1<<31 - 1} {
		j, err := EncodeJump(AMD64, from, from+5+uint64(d))
		require.NoError(t, err)
		add(j, from)
	}
	// llvm-objcopy wraps the stream into an ELF data section that
	// llvm-objdump disassembles from address 0.
	dir := t.TempDir()
	raw := filepath.Join(dir, "stream.bin")
	obj := filepath.Join(dir, "stream.o")
	require.NoError(t, os.WriteFile(raw, stream, 0o644))
	msg, err := exec.Command(objcopy, "-I", "binary", "-O", "elf64-x86-64", raw, obj).CombinedOutput()
	require.NoError(t, err, string(msg))
	out, err := exec.Command(objdump, "-D", "--no-show-raw-insn", "-j", ".data", obj).Output()
	require.NoError(t, err)

	type line struct {
		addr       uint64
		mnem, rest string
	}
	var lines []line
	pendingPrefix := -1
	for _, l := range strings.Split(string(out), "\n") {
		m := odLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		a, _ := strconv.ParseUint(m[1], 16, 64)
		cur := line{addr: a, mnem: m[2], rest: m[3]}
		if pendingPrefix >= 0 {
			cur.addr = uint64(pendingPrefix)
			pendingPrefix = -1
		} else if odPrefixes[cur.mnem] && strings.TrimSpace(cur.rest) == "" {
			pendingPrefix = int(a)
			continue
		}
		lines = append(lines, cur)
	}
	require.Len(t, lines, len(insts), "llvm-objdump and our decoder disagree on the instruction count")
	branches, rips := 0, 0
	off := uint64(0)
	for k, in := range insts {
		l := lines[k]
		require.Equal(t, off, l.addr, "%v: llvm-objdump %s %s starts elsewhere", in, l.mnem, l.rest)
		rel := int64(in.Target - in.End())
		switch in.RelKind {
		case dec.Rel8, dec.Rel32:
			m := odBranch.FindStringSubmatch(l.rest)
			require.NotNil(t, m, "%v: llvm-objdump %s %s", in, l.mnem, l.rest)
			v, _ := strconv.ParseUint(m[1], 16, 64)
			require.Equal(t, off+uint64(in.Len)+uint64(rel), v, "%v: llvm-objdump %s %s", in, l.mnem, l.rest)
			branches++
		case dec.RIPDisp32:
			m := odRIP.FindStringSubmatch(l.rest)
			require.NotNil(t, m, "%v: llvm-objdump %s %s", in, l.mnem, l.rest)
			var v int64
			if m[1] != "" {
				v, _ = strconv.ParseInt(m[1], 10, 64)
			}
			require.Equal(t, rel, v, "%v: llvm-objdump %s %s", in, l.mnem, l.rest)
			rips++
		}
		off += uint64(in.Len)
	}
	t.Logf("llvm-objdump agrees on %d emitted instructions (%d branch and %d RIP displacements)", len(insts), branches, rips)
}
