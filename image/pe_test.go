package image

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// peLayout locates the structures of a fixture that the tests corrupt.
type peLayout struct {
	lfanew, fh, opt, secTable int
	sections                  []*pe.Section
	dirs                      [16]pe.DataDirectory
}

func layoutOf(t *testing.T, data []byte) peLayout {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	var l peLayout
	l.lfanew = int(binary.LittleEndian.Uint32(data[0x3c:]))
	l.fh = l.lfanew + 4
	l.opt = l.fh + 20
	l.secTable = l.opt + int(f.FileHeader.SizeOfOptionalHeader)
	l.sections = f.Sections
	l.dirs = f.OptionalHeader.(*pe.OptionalHeader64).DataDirectory
	return l
}

// fileOff maps an RVA to a file offset through the section table.
func (l peLayout) fileOff(t *testing.T, rva uint32) int {
	t.Helper()
	for _, s := range l.sections {
		if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.Size {
			return int(s.Offset + rva - s.VirtualAddress)
		}
	}
	t.Fatalf("RVA %#x in no section", rva)
	return 0
}

func put32(b []byte, off int, v uint32) { binary.LittleEndian.PutUint32(b[off:], v) }
func put16(b []byte, off int, v uint16) { binary.LittleEndian.PutUint16(b[off:], v) }

// TestPEErrors: malformed input is a *FormatError naming the offset of the
// structure at fault; well-formed images hotpatch does not handle are
// *UnsupportedError.
func TestPEErrors(t *testing.T) {
	orig := readFixture(t, "x64.dll")
	l := layoutOf(t, orig)
	pdataOff := l.fileOff(t, l.dirs[peDirException].VirtualAddress)
	tests := []struct {
		name        string
		mutate      func(b []byte) []byte
		unsupported string // substring of the UnsupportedError
		offset      int    // FormatError offset
		what        string // substring of FormatError.What
	}{
		{name: "truncated DOS header", mutate: func(b []byte) []byte { return b[:0x30] }, offset: 0, what: "DOS header"},
		{name: "e_lfanew past the end", mutate: func(b []byte) []byte { put32(b, 0x3c, 0xfff0); return b }, offset: 0x3c, what: "e_lfanew"},
		{name: "no PE signature", mutate: func(b []byte) []byte { b[l.lfanew] = 'X'; return b }, offset: l.lfanew, what: "PE signature"},
		{name: "i386", mutate: func(b []byte) []byte { put16(b, l.fh, 0x14c); return b }, unsupported: "0x14c (i386)"},
		{name: "ARM64EC", mutate: func(b []byte) []byte { put16(b, l.fh, 0xa641); return b }, unsupported: "ARM64EC"},
		{name: "PE32", mutate: func(b []byte) []byte { put16(b, l.opt, 0x10b); return b }, unsupported: "PE32 (32-bit)"},
		{name: "bad optional header magic", mutate: func(b []byte) []byte { put16(b, l.opt, 0x1234); return b }, offset: l.opt, what: "magic"},
		{name: "section table past the end", mutate: func(b []byte) []byte { return b[:l.secTable+20] }, offset: l.secTable, what: "section table"},
		{
			name: "section data past the end",
			mutate: func(b []byte) []byte {
				h := l.secTable + 40*(len(l.sections)-1)
				put32(b, h+8, 0x100000)  // VirtualSize
				put32(b, h+16, 0x100000) // SizeOfRawData
				return b
			},
			offset: l.secTable + 40*(len(l.sections)-1) + 16, what: "raw data",
		},
		{name: "COFF symbols past the end", mutate: func(b []byte) []byte { put32(b, l.fh+12, 0x10000000); return b }, offset: l.fh + 8, what: "COFF symbol table"},
		{name: "pdata end before begin", mutate: func(b []byte) []byte { put32(b, pdataOff+12+4, 0x10); return b }, offset: pdataOff + 12, what: "pdata entry 1"},
		{
			// An odd UnwindData is the RVA of another RUNTIME_FUNCTION;
			// pointing an entry at itself makes a cycle.
			name: "pdata unwind chain cycle",
			mutate: func(b []byte) []byte {
				put32(b, pdataOff+8, l.dirs[peDirException].VirtualAddress|1)
				return b
			},
			offset: pdataOff, what: "unwind chain",
		},
		{name: "pdata unwind info out of the file", mutate: func(b []byte) []byte { put32(b, pdataOff+8, 0x7fff0000); return b }, offset: pdataOff + 8, what: "unwind info"},
		{name: "export directory out of the file", mutate: func(b []byte) []byte { put32(b, l.opt+112, 0x7fff0000); return b }, offset: l.opt + 112, what: "export directory"},
		{name: "debug directory out of the file", mutate: func(b []byte) []byte { put32(b, l.opt+112+8*peDirDebug, 0x7fff0000); return b }, offset: l.opt + 112 + 8*peDirDebug, what: "debug directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := Parse(tt.mutate(bytes.Clone(orig)))
			require.Nil(t, img)
			require.Error(t, err)
			if tt.unsupported != "" {
				var ue *UnsupportedError
				require.ErrorAs(t, err, &ue)
				require.True(t, errors.Is(err, ErrUnsupported))
				require.Contains(t, ue.What, tt.unsupported)
				return
			}
			var fe *FormatError
			require.ErrorAs(t, err, &fe, "got %v", err)
			require.True(t, errors.Is(err, ErrMalformed))
			require.Equal(t, int64(tt.offset), fe.Offset, "%v", err)
			require.Contains(t, fe.What, tt.what)
		})
	}
}

// TestPEARM64PdataFlags: the ARM64 .pdata word's flag says where the length
// is: 0 in the .xdata header, 1 and 2 (fragment) in the word itself, 3 nowhere.
func TestPEARM64PdataFlags(t *testing.T) {
	orig := readFixture(t, "a64.dll")
	l := layoutOf(t, orig)
	pdataOff := l.fileOff(t, l.dirs[peDirException].VirtualAddress)
	base, err := Parse(orig)
	require.NoError(t, err)
	// Entry 1 is big_frame (unpacked, .xdata), entry 2 middle (packed).
	bigFrame, _ := base.FunctionByName("big_frame")
	middle, _ := base.FunctionByName("middle")
	require.NotZero(t, bigFrame.Unwind, "unpacked: Unwind is the .xdata RVA")
	require.Zero(t, middle.Unwind, "packed: no .xdata")
	require.Equal(t, uint32(binary.LittleEndian.Uint32(orig[pdataOff+8:])), bigFrame.RVA)
	require.Equal(t, uint32(binary.LittleEndian.Uint32(orig[pdataOff+16:])), middle.RVA)
	packed := binary.LittleEndian.Uint32(orig[pdataOff+20:])
	require.Equal(t, uint32(1), packed&3)

	tests := []struct {
		name   string
		word   uint32
		size   uint32
		extent Source
	}{
		{"packed", packed, middle.Size, FromPdata},
		{"packed fragment", packed&^3 | 2, middle.Size, FromPdata},
		{"packed, length 8 words", packed&^(0x7ff<<2) | 8<<2, 32, FromPdata},
		{"flag 3: no length", packed | 3, 0, FromGap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			put32(b, pdataOff+20, tt.word)
			img, err := Parse(b)
			require.NoError(t, err)
			f, ok := img.FunctionAt(middle.RVA)
			require.True(t, ok)
			require.Equal(t, middle.RVA, f.RVA)
			require.NotZero(t, f.Found&FromPdata)
			require.Equal(t, tt.extent, f.Extent)
			if tt.size != 0 {
				require.Equal(t, tt.size, f.Size)
			}
		})
	}
}

// TestTrimPadding: what counts as padding at the end of a gap-sized function.
func TestTrimPadding(t *testing.T) {
	tests := []struct {
		name     string
		arch     Arch
		code     string // hex
		zeroTail bool
		want     int // 0: keep everything
	}{
		{"x64 ret, int3 padding", AMD64, "c3cccccc", false, 1},
		{"x64 ret, 6-byte nop", AMD64, "c3660f1f440000", false, 1},
		{"x64 ret, 11-byte cs nopw", AMD64, "c3662e0f1f840000000000", false, 1},
		{"x64 ret, 0x90 and 66 90", AMD64, "c3906690", false, 1},
		{"x64 jmp rel32 ending in 00 00 is code", AMD64, "e910000000", false, 0},
		{"x64 jmp rel32 then int3", AMD64, "e910000000cccc", false, 5},
		{"x64 call keeps the instruction it returns to", AMD64, "e800000000cccccc", false, 6},
		{"x64 falls through into nops: keep", AMD64, "4889c89090", false, 0},
		{"x64 only padding: keep", AMD64, "cccc", false, 0},
		{"x64 ret then zero fill", AMD64, "c3", true, 1},
		{"x64 undecodable: keep", AMD64, "c30f0b0fcc", false, 0},
		{"arm64 ret, nop, zero", ARM64, "c0035fd61f2003d500000000", false, 4},
		{"arm64 literal pool ending in a zero word: keep", ARM64, "c0035fd67856341200000000", false, 0},
		{"arm64 bl keeps the word it returns to", ARM64, "00000094" + "00000000" + "00000000", false, 8},
		{"arm64 b then udf", ARM64, "00000014" + "01000000", false, 4},
		{"arm64 ret then zero fill", ARM64, "c0035fd6", true, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, err := hex.DecodeString(tt.code)
			require.NoError(t, err)
			require.Equal(t, tt.want, trimPadding(tt.arch, code, 0x1000, tt.zeroTail))
		})
	}
}

// TestPEModel: what parsePE records for the x64 fixture, beyond what the
// oracle test compares.
func TestPEModel(t *testing.T) {
	img, err := Open("testdata/pe/x64.dll")
	require.NoError(t, err)
	require.Equal(t, FormatPE, img.Format)
	require.Equal(t, AMD64, img.Arch)
	require.Equal(t, uint64(0x180000000), img.Base)
	require.Equal(t, uint16(0x8664), img.Identity.Machine)
	require.Equal(t, img.Size, img.Identity.SizeOfImage)
	require.NotNil(t, img.Identity.CodeView)
	require.NotZero(t, img.Identity.TimeDateStamp, "/Brepro: a hash, not zero")

	text, ok := img.SectionAt(0x1000)
	require.True(t, ok)
	require.Equal(t, ".text", text.Name)
	require.Equal(t, SectionRead|SectionExec, text.Flags)

	var names []string
	for _, e := range img.Exports {
		names = append(names, e.Name)
	}
	require.Equal(t, []string{"exported_add", "exported_leaf", "split_func"}, names)

	leaf, ok := img.FunctionByName("leaf_only_called")
	require.True(t, ok)
	require.Equal(t, FromGap, leaf.Extent)
	require.Zero(t, leaf.Found&FromPdata, "a leaf function has no .pdata entry")

	for _, s := range img.Symbols {
		require.False(t, strings.HasPrefix(s.Name, ".text"), "section definitions are not symbols")
		if s.Name == "counter" {
			require.Equal(t, SymbolData, s.Kind)
			require.True(t, s.Global)
		}
		if s.Name == "leaf_only_called" {
			require.Equal(t, SymbolFunc, s.Kind)
			require.False(t, s.Global, "static")
		}
		if s.Name == "split_cold" {
			require.Equal(t, SymbolOther, s.Kind, "an untyped label in code")
		}
	}
}

// TestPEDirectoryErrors: saferwall parses imports and base relocations; when
// it gives up on one (it only logs), parsePE reports a *FormatError instead
// of silently returning an image without them.
func TestPEDirectoryErrors(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join("..", "testdata", "bin", "c-v1-amd64.exe"))
	require.NoError(t, err)
	l := layoutOf(t, orig)
	require.NotZero(t, l.dirs[peDirImport].VirtualAddress)
	require.NotZero(t, l.dirs[peDirBaseReloc].VirtualAddress)
	img, err := Parse(orig)
	require.NoError(t, err)
	require.NotEmpty(t, img.Imports)
	require.NotEmpty(t, img.Relocs)

	tests := []struct {
		name   string
		mutate func(b []byte)
		what   string
	}{
		{"import descriptor out of the file", func(b []byte) { put32(b, l.opt+112+8*peDirImport, 0x7fff0000) }, "import directory"},
		{"reloc block with a bad size", func(b []byte) {
			put32(b, l.fileOff(t, l.dirs[peDirBaseReloc].VirtualAddress)+4, 3) // SizeOfBlock < 8
		}, "base relocation directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bytes.Clone(orig)
			tt.mutate(b)
			_, err := Parse(b)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			require.Contains(t, fe.What, tt.what)
		})
	}
}

// TestPEFixturesReproduce rebuilds testdata/pe with its build.sh in a
// temporary directory and checks the committed DLLs are what it produces.
func TestPEFixturesReproduce(t *testing.T) {
	testenv.NeedHostTool(t, "clang")
	testenv.NeedHostTool(t, "lld-link")
	testenv.NeedHostTool(t, "bash")
	dir := t.TempDir()
	for _, name := range []string{"build.sh", "funcs.c", "chained_x64.s"} {
		b, err := os.ReadFile(filepath.Join("testdata", "pe", name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o755))
	}
	out, err := exec.Command("bash", filepath.Join(dir, "build.sh")).CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"x64.dll", "a64.dll"} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.True(t, bytes.Equal(readFixture(t, name), got), "%s: build.sh no longer reproduces the committed file", name)
	}
}
