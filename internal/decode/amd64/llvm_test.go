package amd64

import (
	"bufio"
	"debug/elf"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// textSection is an executable section's bytes at their virtual address.
type textSection struct {
	addr uint64
	data []byte
}

func (s textSection) at(a uint64) ([]byte, bool) {
	if a < s.addr || a >= s.addr+uint64(len(s.data)) {
		return nil, false
	}
	return s.data[a-s.addr:], true
}

func elfText(t *testing.T, path string) textSection {
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	s := f.Section(".text")
	require.NotNil(t, s)
	data, err := s.Data()
	require.NoError(t, err)
	return textSection{addr: s.Addr, data: data}
}

func peText(t *testing.T, path string) textSection {
	f, err := pe.Open(path)
	require.NoError(t, err)
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	require.True(t, ok, "PE32+ expected")
	s := f.Section(".text")
	require.NotNil(t, s)
	data, err := s.Data()
	require.NoError(t, err)
	if int(s.VirtualSize) < len(data) {
		data = data[:s.VirtualSize]
	}
	return textSection{addr: oh.ImageBase + uint64(s.VirtualAddress), data: data}
}

// llvmPrefixes are the prefixes llvm-objdump may print on a line of their own.
var llvmPrefixes = map[string]bool{"lock": true, "rep": true, "repne": true, "repe": true, "data16": true,
	"cs": true, "ds": true, "es": true, "ss": true, "fs": true, "gs": true, "rex64": true, "addr32": true, "notrack": true, "bnd": true}

var (
	llvmLine   = regexp.MustCompile(`^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$`)
	llvmTarget = regexp.MustCompile(`# (0x[0-9a-f]+)`)
	llvmSymbol = regexp.MustCompile(`^[0-9a-f]+ <.*>:$`)
	llvmBranch = regexp.MustCompile(`^(0x[0-9a-f]+)`)
)

// boundaryStats is what compareWithLLVM counted.
type boundaryStats struct {
	insts, ripTargets, branchTargets, mismatches int
}

// compareWithLLVM disassembles path with llvm-objdump and checks, for every
// instruction llvm decodes (each one followed by another in a contiguous
// stretch), that our decoder finds the same length, and for each
// RIP-relative operand and direct branch the same target.
func compareWithLLVM(t *testing.T, objdump, path string, text textSection) boundaryStats {
	cmd := exec.Command(objdump, "-d", "--no-show-raw-insn", "--no-leading-headers", "-j", ".text", path)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { require.NoError(t, cmd.Wait()) }()

	var st boundaryStats
	report := func(format string, args ...any) {
		st.mismatches++
		if st.mismatches <= 20 {
			t.Errorf(format, args...)
		}
	}
	type pending struct {
		addr       uint64
		mnem, rest string
	}
	var prev, prefixLine *pending
	checkOne := func(code []byte, p *pending, next uint64) {
		in, err := Decode(code, p.addr)
		want := int(next - p.addr)
		switch {
		case err != nil:
			report("%#x: llvm decodes %q (%d bytes), we fail: %v", p.addr, p.mnem+" "+p.rest, want, err)
		case in.Len != want:
			report("%#x: llvm %q is %d bytes, we decode %v as %d", p.addr, p.mnem+" "+p.rest, want, in, in.Len)
		default:
			checkTarget(p.mnem, p.rest, in, &st, report)
		}
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		m := llvmLine.FindStringSubmatch(line)
		if m == nil {
			// llvm restarts decoding at each symbol (data-in-code such as
			// mingw's constructor lists may end mid-"instruction"), and
			// "..." skips zeros: the instruction before either has no
			// known length. Compare per symbol, from its start.
			if strings.TrimSpace(line) == "..." || llvmSymbol.MatchString(line) {
				prev, prefixLine = nil, nil
			}
			continue
		}
		addr, err := strconv.ParseUint(m[1], 16, 64)
		if err != nil {
			continue
		}
		cur := &pending{addr: addr, mnem: m[2], rest: m[3]}
		if prefixLine != nil {
			// llvm prints some prefixes (lock, rep) on a line of their own:
			// the instruction starts at the prefix.
			cur.addr, prefixLine = prefixLine.addr, nil
		} else if llvmPrefixes[cur.mnem] && strings.TrimSpace(cur.rest) == "" {
			if prev != nil && !strings.Contains(prev.mnem, "unknown") {
				if code, ok := text.at(prev.addr); ok {
					st.insts++
					checkOne(code, prev, addr)
				}
			}
			prev, prefixLine = nil, cur
			continue
		}
		if prev != nil && !strings.Contains(prev.mnem, "unknown") && !strings.Contains(prev.rest, "unknown") && addr > prev.addr {
			if code, ok := text.at(prev.addr); ok {
				st.insts++
				checkOne(code, prev, cur.addr)
			}
		}
		prev = cur
	}
	require.NoError(t, sc.Err())
	return st
}

func checkTarget(mnem, rest string, in Inst, st *boundaryStats, report func(string, ...any)) {
	if strings.Contains(rest, "(%rip)") || strings.Contains(rest, "(%eip)") {
		tm := llvmTarget.FindStringSubmatch(rest)
		if tm == nil {
			return
		}
		want, _ := strconv.ParseUint(tm[1][2:], 16, 64)
		st.ripTargets++
		if in.RelKind != RIPDisp32 && in.RelKind != EIPDisp32 || in.Target != want {
			report("%#x: llvm %s %s targets %#x, we have %v %v target %#x", in.PC, mnem, rest, want, in, in.RelKind, in.Target)
		}
		return
	}
	isBranch := strings.HasPrefix(mnem, "j") || strings.HasPrefix(mnem, "call") || strings.HasPrefix(mnem, "loop") || mnem == "xbegin"
	if !isBranch || strings.HasPrefix(rest, "*") {
		return
	}
	bm := llvmBranch.FindStringSubmatch(rest)
	if bm == nil {
		return
	}
	want, _ := strconv.ParseUint(bm[1][2:], 16, 64)
	st.branchTargets++
	if (in.RelKind != Rel8 && in.RelKind != Rel32) || in.Target != want {
		report("%#x: llvm %s %s targets %#x, we have %v %v target %#x", in.PC, mnem, rest, want, in, in.RelKind, in.Target)
	}
}

// TestBoundariesMatchLLVM checks instruction boundaries and PC-relative
// targets against llvm-objdump on real code: this test binary's own .text
// (Go compiler output), a few of Wine's x86-64 PE DLLs (mingw gcc output) and
// the module's x86-64 fixtures (testdata/bin: mingw PE, gcc ELF, Go).
func TestBoundariesMatchLLVM(t *testing.T) {
	objdump := testenv.NeedHostTool(t, "llvm-objdump-14", "llvm-objdump")
	type target struct {
		name, path string
		pe         bool
	}
	self, err := os.Executable()
	require.NoError(t, err)
	targets := []target{{name: "go-test-binary", path: self}}
	wine := "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"
	for _, dll := range []string{"msvcrt.dll", "kernel32.dll", "ntdll.dll", "ucrtbase.dll"} {
		p := filepath.Join(wine, dll)
		if _, err := os.Stat(p); err != nil {
			if testenv.CI() {
				t.Fatalf("CI=true: %s missing (wine64 not installed?)", p)
			}
			t.Logf("skipping %s: %v", dll, err)
			continue
		}
		targets = append(targets, target{name: dll, path: p, pe: true})
	}
	if fixtures, _ := filepath.Glob(testenv.Testdata(t, "bin", "*.exe")); len(fixtures) > 0 {
		for _, f := range fixtures {
			if pf, err := pe.Open(f); err == nil {
				if pf.FileHeader.Machine == pe.IMAGE_FILE_MACHINE_AMD64 {
					targets = append(targets, target{name: filepath.Base(f), path: f, pe: true})
				}
				pf.Close()
			}
		}
	}
	if fixtures, _ := filepath.Glob(testenv.Testdata(t, "bin", "*.elf")); len(fixtures) > 0 {
		for _, f := range fixtures {
			if ef, err := elf.Open(f); err == nil {
				if ef.Machine == elf.EM_X86_64 {
					targets = append(targets, target{name: filepath.Base(f), path: f})
				}
				ef.Close()
			}
		}
	}
	var total boundaryStats
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			var text textSection
			if tg.pe {
				text = peText(t, tg.path)
			} else {
				text = elfText(t, tg.path)
			}
			st := compareWithLLVM(t, objdump, tg.path, text)
			t.Logf("%s: %d instructions compared, %d RIP-relative and %d branch targets compared, %d mismatches",
				tg.name, st.insts, st.ripTargets, st.branchTargets, st.mismatches)
			require.Greater(t, st.insts, 100, "too few instructions: is the llvm-objdump output parsed?")
			require.Zero(t, st.mismatches)
			total.insts += st.insts
			total.ripTargets += st.ripTargets
			total.branchTargets += st.branchTargets
		})
	}
	t.Logf("total: %s", fmt.Sprintf("%d instructions, %d RIP targets, %d branch targets, 0 mismatches",
		total.insts, total.ripTargets, total.branchTargets))
}
