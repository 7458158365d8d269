package arm64

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/stretchr/testify/require"
)

// TestAgainstLLVMObjdump decodes real AArch64 code (a static glibc program
// built by gcc, a freestanding one built by clang -mcmodel=tiny so globals
// and constants are reached through ADR and LDR (literal), and an llvm-mc
// file holding every PC-relative form, and the committed ARM64 fixtures under
// testdata/bin) and compares, word by word, the class and absolute target of
// every PC-relative instruction with llvm-objdump's.
func TestAgainstLLVMObjdump(t *testing.T) {
	objdump := testenv.NeedHostTool(t, "llvm-objdump", "llvm-objdump-14")
	dir := t.TempDir()
	src := filepath.Join("testdata", "objdump.c")
	type build struct {
		name string
		tool []string
		args []string
	}
	builds := []build{
		{"gcc-static.elf", []string{"aarch64-linux-gnu-gcc"}, []string{"-O2", "-static", src}},
		{"clang-tiny.elf", []string{"clang", "clang-14"}, []string{"--target=aarch64-linux-gnu", "-O2", "-mcmodel=tiny", "-DFREESTANDING", "-ffreestanding", "-nostdlib", "-fuse-ld=lld", "-static", src}},
		{"literals.o", []string{"llvm-mc", "llvm-mc-14"}, []string{"-triple=aarch64", "-filetype=obj", filepath.Join("testdata", "literals.s")}},
	}
	total, pcrel := 0, 0
	for _, b := range builds {
		tool := testenv.NeedHostTool(t, b.tool...)
		out := filepath.Join(dir, b.name)
		cmd := exec.Command(tool, append(b.args, "-o", out)...)
		msg, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", b.name, msg)
		dis, err := exec.Command(objdump, "-d", out).Output()
		require.NoError(t, err)
		n, p, bad := compareObjdump(t, dis)
		require.Empty(t, bad, "%s: mismatches with llvm-objdump", b.name)
		t.Logf("%s: %d instructions compared, %d PC-relative, 0 mismatches", b.name, n, p)
		total += n
		pcrel += p
	}

	// A Go program built for linux/arm64 (Go's own code generation).
	if testing.Short() {
		t.Logf("-short: skipping the GOARCH=arm64 Go build")
	} else {
		objdumpGo(t, objdump, dir, &total, &pcrel)
	}

	// The committed ARM64 fixtures (clang+lld PE, gcc ELF) too.
	fixtures, err := filepath.Glob(testenv.Testdata(t, "bin", "*arm64*"))
	require.NoError(t, err)
	for _, fx := range fixtures {
		dis, err := exec.Command(objdump, "-d", fx).Output()
		require.NoError(t, err, fx)
		n, p, bad := compareObjdump(t, dis)
		require.Empty(t, bad, "%s: mismatches with llvm-objdump", fx)
		t.Logf("%s: %d instructions compared, %d PC-relative, 0 mismatches", filepath.Base(fx), n, p)
		total += n
		pcrel += p
	}
	require.Greater(t, pcrel, 10000, "too few PC-relative instructions seen: is the input real code?")
	t.Logf("total: %d instructions compared, %d PC-relative targets equal to llvm-objdump's, 0 mismatches", total, pcrel)
}

var (
	objdumpLine = regexp.MustCompile(`^\s*([0-9a-f]+):\s+([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2}) ([0-9a-f]{2})\s+(\S+)\s*(.*)$`)
	hexTarget   = regexp.MustCompile(`(?:^|[ ,])0x([0-9a-f]+)(?:\s|$)`)
)

// llvmClass maps an llvm-objdump mnemonic (and operands) to the class it
// must decode as; Other means "no PC-relative target and no flow change".
func llvmClass(mn, ops string) (Class, bool) {
	switch {
	case mn == "b":
		return B, true
	case mn == "bl":
		return BL, true
	case strings.HasPrefix(mn, "b.") || strings.HasPrefix(mn, "bc."):
		return BCond, true
	case mn == "cbz":
		return CBZ, true
	case mn == "cbnz":
		return CBNZ, true
	case mn == "tbz":
		return TBZ, true
	case mn == "tbnz":
		return TBNZ, true
	case mn == "adr":
		return ADR, true
	case mn == "adrp":
		return ADRP, true
	case (mn == "ldr" || mn == "ldrsw" || mn == "prfm") && !strings.Contains(ops, "["):
		return LDRLiteral, true
	case mn == "br" || mn == "braaz" || mn == "brabz" || mn == "braa" || mn == "brab":
		return BR, true
	case mn == "blr" || mn == "blraaz" || mn == "blrabz" || mn == "blraa" || mn == "blrab":
		return BLR, true
	case mn == "ret" || mn == "retaa" || mn == "retab" || mn == "eret":
		return RET, true
	case mn == "brk":
		return BRK, true
	case mn == "udf":
		return UDF, true
	case mn == "<unknown>":
		return Other, false // llvm cannot tell: nothing to compare
	}
	return Other, true
}

// compareObjdump walks llvm-objdump -d output and returns the number of
// instructions compared, of PC-relative ones, and a description of each
// disagreement.
func compareObjdump(t *testing.T, dis []byte) (n, pcrel int, bad []string) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(dis))
	for sc.Scan() {
		m := objdumpLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		addr, err := strconv.ParseUint(m[1], 16, 64)
		require.NoError(t, err)
		raw, err := hex.DecodeString(m[5] + m[4] + m[3] + m[2])
		require.NoError(t, err)
		word := uint32(raw[0])<<24 | uint32(raw[1])<<16 | uint32(raw[2])<<8 | uint32(raw[3])
		mn, ops := m[6], m[7]
		want, known := llvmClass(mn, ops)
		if !known {
			continue
		}
		n++
		i := Decode(word, addr)
		if i.Class != want {
			bad = append(bad, sc.Text()+" => "+i.Class.String())
			continue
		}
		if !want.PCRelative() {
			continue
		}
		pcrel++
		var target uint64
		if want == ADR { // llvm-objdump 14 prints ADR's offset, not its target
			k := strings.LastIndex(ops, "#")
			d, err := strconv.ParseInt(strings.TrimSpace(ops[k+1:]), 0, 64)
			require.NoError(t, err, sc.Text())
			target = addr + uint64(d)
		} else {
			if k := strings.Index(ops, "<"); k >= 0 {
				ops = ops[:k]
			}
			tm := hexTarget.FindAllStringSubmatch(ops, -1)
			require.NotEmpty(t, tm, sc.Text())
			target, err = strconv.ParseUint(tm[len(tm)-1][1], 16, 64)
			require.NoError(t, err)
		}
		if i.Target != target {
			bad = append(bad, sc.Text()+" => "+strconv.FormatUint(i.Target, 16))
		}
	}
	require.NoError(t, sc.Err())
	return n, pcrel, bad
}

// objdumpGo builds a Go program for linux/arm64 and compares its code.
func objdumpGo(t *testing.T, objdump, dir string, total, pcrel *int) {
	t.Helper()
	goTool := testenv.NeedHostTool(t, "go")
	goDir := filepath.Join(dir, "gohello")
	require.NoError(t, os.MkdirAll(goDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(goDir, "go.mod"), []byte("module gohello\n\ngo 1.26\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(goDir, "main.go"), []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644))
	goBuild := exec.Command(goTool, "build", "-o", "gohello.elf", ".")
	goBuild.Dir = goDir
	goBuild.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0", "GOFLAGS=")
	msg, err := goBuild.CombinedOutput()
	require.NoError(t, err, "%s", msg)
	dis, err := exec.Command(objdump, "-d", filepath.Join(goDir, "gohello.elf")).Output()
	require.NoError(t, err)
	n, p, bad := compareObjdump(t, dis)
	require.Empty(t, bad, "go arm64 build: mismatches with llvm-objdump")
	t.Logf("go-hello (GOARCH=arm64): %d instructions compared, %d PC-relative, 0 mismatches", n, p)
	*total += n
	*pcrel += p
}
