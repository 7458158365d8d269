package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

func TestParseELFFixture(t *testing.T) {
	for _, tc := range []struct {
		file    string
		arch    Arch
		machine uint16
		reloc   RelocType
	}{
		{"textrel-amd64.elf", AMD64, 62, RelocType(elf.R_X86_64_RELATIVE)},
		{"textrel-arm64.elf", ARM64, 183, RelocType(elf.R_AARCH64_RELATIVE)},
	} {
		t.Run(tc.file, func(t *testing.T) {
			img, data := fixture(t, tc.file)
			f, err := elf.NewFile(bytes.NewReader(data))
			require.NoError(t, err)

			require.Equal(t, FormatELF, img.Format)
			require.Equal(t, tc.arch, img.Arch)
			require.Equal(t, tc.machine, img.Identity.Machine)
			require.Equal(t, uint64(0), img.Base, "PIE linked at 0")
			require.Equal(t, uint32(f.Entry), img.Entry)
			require.Len(t, img.Identity.BuildID, 20, "sha1 build ID")
			require.Contains(t, string(data), string(img.Identity.BuildID))

			// Aliases: one function, named by the rule (global, shortest, alphabetical).
			a, ok := img.FunctionByName("fx_alias_a")
			require.True(t, ok)
			for _, alias := range []string{"fx_alias_b", "fx_alias_long_name"} {
				_, ok := img.FunctionByName(alias)
				require.False(t, ok, alias)
			}
			require.Equal(t, FromSymbol|FromExport, a.Found)
			require.Equal(t, FromSymbol, a.Extent)

			// Entry point: _start from the symbol table, with its size.
			start, ok := img.FunctionByName("_start")
			require.True(t, ok)
			require.Equal(t, img.Entry, start.RVA)
			require.NotZero(t, start.Found&FromEntry)

			local, ok := img.FunctionByName("fx_local")
			if ok { // gcc may inline or rename (fx_local.constprop.0) a static function
				require.Equal(t, FromSymbol, local.Found)
			}

			// Symbols: functions, data, local/global.
			kinds := map[string]Symbol{}
			for _, s := range img.Symbols {
				kinds[s.Name] = s
			}
			require.Equal(t, SymbolData, kinds["fx_global_data"].Kind)
			require.True(t, kinds["fx_global_data"].Global)
			require.Equal(t, SymbolFunc, kinds["fx_leaf"].Kind)
			require.Equal(t, SymbolData, kinds["fx_table"].Kind)

			// The table in .text: three RELATIVE relocations, addends = the functions.
			rel := codeRelocs(img)
			require.Len(t, rel, 3)
			var want []int64
			for _, n := range []string{"fx_leaf", "fx_caller", "fx_alias_a"} {
				fn, ok := img.FunctionByName(n)
				require.True(t, ok, n)
				want = append(want, int64(fn.RVA))
			}
			for i, r := range rel {
				require.Equal(t, tc.reloc, r.Type)
				require.Equal(t, uint8(8), r.Size)
				require.Equal(t, want[i], r.Addend)
				require.Equal(t, kinds["fx_table"].RVA+uint32(8*i), r.RVA)
			}

			// Imports: write and read through JUMP_SLOT, from libc (versioned).
			imps := map[string]Import{}
			for _, im := range img.Imports {
				imps[im.Name] = im
			}
			for _, n := range []string{"write", "read", "__libc_start_main"} {
				require.Equal(t, "libc.so.6", imps[n].Library, n)
				s, ok := img.SectionAt(imps[n].Slot)
				require.True(t, ok)
				require.Contains(t, []string{".got", ".got.plt"}, s.Name)
			}

			// Exports: the defined dynamic symbols.
			exps := map[string]Export{}
			for _, e := range img.Exports {
				exps[e.Name] = e
			}
			require.Equal(t, a.RVA, exps["fx_alias_long_name"].RVA)
			require.NotContains(t, exps, "write")

			// Sections: .text executable, .bss uninitialised, no .tbss.
			text, ok := img.SectionAt(a.RVA)
			require.True(t, ok)
			require.Equal(t, ".text", text.Name)
			require.Equal(t, SectionRead|SectionExec, text.Flags)
			for _, s := range img.Sections {
				if s.Name == ".bss" {
					require.Equal(t, SectionRead|SectionWrite|SectionUninit, s.Flags)
					require.Empty(t, s.Data)
				}
			}
		})
	}
}

// TestParseELFGoBuildID: a GNU build ID wins over the Go linker's note,
// which is used when it is the only one.
func TestParseELFGoBuildID(t *testing.T) {
	notes := []elfNote{{name: "Go", typ: elfNoteGoBuildID, desc: []byte("go-id")}}
	require.Equal(t, []byte("go-id"), pickBuildID(notes))
	notes = append(notes, elfNote{name: "GNU", typ: elfNoteGNUBuildID, desc: []byte{1, 2}})
	require.Equal(t, []byte{1, 2}, pickBuildID(notes))
	require.Nil(t, pickBuildID(nil))
}

// elfWith returns a copy of the fixture with a header field overwritten.
func elfWith(t *testing.T, off int, v any) []byte {
	t.Helper()
	_, data := fixture(t, "textrel-amd64.elf")
	out := bytes.Clone(data)
	var b bytes.Buffer
	require.NoError(t, binary.Write(&b, binary.LittleEndian, v))
	copy(out[off:], b.Bytes())
	return out
}

func TestParseELFErrors(t *testing.T) {
	_, data := fixture(t, "textrel-amd64.elf")
	f, err := elf.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	shoff := binary.LittleEndian.Uint64(data[40:])
	textIdx := -1
	for i, s := range f.Sections {
		if s.Name == ".text" {
			textIdx = i
		}
	}
	require.Positive(t, textIdx)
	textHdr := int(shoff) + 64*textIdx

	for _, tc := range []struct {
		name   string
		data   []byte
		unsupp bool
		offset int64 // for FormatError; -2: any
	}{
		{"empty", nil, false, 0},
		{"bad magic", []byte("\x7fELG"), false, 0},
		{"ident only", data[:16], false, 16},
		{"truncated header", data[:40], false, 16},
		{"32-bit", elfWith(t, 4, uint8(1)), true, 0},
		{"big-endian", elfWith(t, 5, uint8(2)), true, 0},
		{"bad class", elfWith(t, 4, uint8(7)), false, 4},
		{"bad version", elfWith(t, 6, uint8(9)), false, 6},
		{"object file", elfWith(t, 16, uint16(elf.ET_REL)), true, 0},
		{"riscv", elfWith(t, 18, uint16(elf.EM_RISCV)), true, 0},
		{"bad type", elfWith(t, 16, uint16(0x77)), false, 16},
		{"no program headers", elfWith(t, 56, uint16(0)), false, 56},
		{"program headers beyond end", elfWith(t, 32, uint64(len(data)-8)), false, 32},
		{"section headers beyond end", elfWith(t, 40, uint64(len(data)-8)), false, 40},
		{"small phentsize", elfWith(t, 54, uint16(8)), false, 54},
		{"truncated file", data[:len(data)/2], false, 40},
		{".text beyond end", elfWith(t, textHdr+24, uint64(len(data))), false, -2},
		{"huge span", elfWith(t, int(binary.LittleEndian.Uint64(data[32:]))+56*3+40, uint64(1<<33)), true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := Parse(tc.data)
			require.Error(t, err)
			require.Nil(t, img)
			if tc.unsupp {
				require.ErrorIs(t, err, ErrUnsupported, "%v", err)
				var ue *UnsupportedError
				require.ErrorAs(t, err, &ue)
				return
			}
			require.ErrorIs(t, err, ErrMalformed, "%v", err)
			var fe *FormatError
			require.ErrorAs(t, err, &fe)
			if tc.offset != -2 {
				require.Equal(t, tc.offset, fe.Offset, "%v", err)
			} else {
				require.GreaterOrEqual(t, fe.Offset, int64(0), "%v", err)
			}
		})
	}
}

// TestParseELFNoSections: a file stripped of its section headers (sstrip)
// is described by its PT_LOAD segments; the build ID comes from PT_NOTE and
// the entry point is the one function, sized up to the end of its segment.
func TestParseELFNoSections(t *testing.T) {
	full, data := fixture(t, "textrel-amd64.elf")
	m := bytes.Clone(data)
	binary.LittleEndian.PutUint64(m[40:], 0) // e_shoff
	binary.LittleEndian.PutUint16(m[60:], 0) // e_shnum
	binary.LittleEndian.PutUint16(m[62:], 0) // e_shstrndx
	img, err := Parse(m)
	require.NoError(t, err)
	require.Equal(t, full.Identity.BuildID, img.Identity.BuildID)
	require.Equal(t, full.Entry, img.Entry)
	require.Empty(t, img.Symbols)
	require.Len(t, img.Functions, 1)
	f := img.Functions[0]
	require.Equal(t, FromEntry, f.Found)
	require.Equal(t, FromGap, f.Extent)
	seg, ok := img.SectionAt(f.RVA)
	require.True(t, ok)
	require.Equal(t, "LOAD", seg.Name[:4])
	require.Equal(t, seg.RVA+seg.Size, f.End())
	require.NotZero(t, seg.Flags&SectionExec)
	// Same loaded code, different section split: the hash covers the whole
	// executable segment instead of .init/.plt/.text/.fini.
	code, ok := img.Bytes(full.Entry, 16)
	require.True(t, ok)
	want, _ := full.Bytes(full.Entry, 16)
	require.Equal(t, want, code)
}

// TestParseELFRELR compares the packed relative relocations with GNU
// readelf's decoding of .relr.dyn.
func TestParseELFRELR(t *testing.T) {
	readelf := testenv.NeedHostTool(t, "readelf")
	path := buildRELR(t)
	img, err := Open(path)
	require.NoError(t, err)
	out, err := exec.Command(readelf, "-rW", path).Output()
	require.NoError(t, err)
	var want []uint32
	in := false
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "Relocation section '.relr.dyn'"):
			in = true
		case strings.HasPrefix(line, "Relocation section"), line == "":
			in = false
		case in:
			if v, err := strconv.ParseUint(strings.TrimSpace(line), 16, 64); err == nil {
				want = append(want, uint32(v-img.Base))
			}
		}
	}
	require.NotEmpty(t, want)
	var got []uint32
	for _, r := range img.Relocs {
		got = append(got, r.RVA)
		require.Equal(t, RelocType(elf.R_X86_64_RELATIVE), r.Type)
	}
	require.Equal(t, want, got)
	// The in-place addends of the .text table are the functions it lists.
	leaf, ok := img.FunctionByName("fx_leaf")
	require.True(t, ok)
	require.Equal(t, int64(leaf.RVA), codeRelocs(img)[0].Addend)
}

// buildRELR builds textrel.c as a PIE with packed relative relocations.
func buildRELR(t *testing.T) string {
	t.Helper()
	gcc := testenv.NeedHostTool(t, "gcc")
	out := filepath.Join(t.TempDir(), "relr.elf")
	b, err := exec.Command(gcc, "-O2", "-fPIE", "-pie", "-rdynamic", "-DWITH_MAIN", "-Wl,-z,notext",
		"-Wl,-z,pack-relative-relocs", "-o", out, filepath.Join("testdata", "textrel.c")).CombinedOutput()
	if err != nil && strings.Contains(string(b), "pack-relative-relocs") {
		testenv.Missing(t, "ld with -z pack-relative-relocs (binutils 2.38+)", string(b))
	}
	require.NoError(t, err, "%s", b)
	return out
}

// BenchmarkParseELF loads a Go linux/amd64 program (functions, symbols,
// code hash), against debug/elf reading the same file's symbol table.
func BenchmarkParseELF(b *testing.B) {
	data, err := os.ReadFile(testenv.GoBuild(b, "testdata/go/v1", "linux", "amd64"))
	require.NoError(b, err)
	b.Run("image.Parse", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		n := 0
		for b.Loop() {
			img, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			n = len(img.Functions)
		}
		b.ReportMetric(float64(n), "functions")
	})
	b.Run("debug/elf", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			f, err := elf.NewFile(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := f.Symbols(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
