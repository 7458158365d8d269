package image

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	spe "github.com/saferwall/pe"
	spelog "github.com/saferwall/pe/log"
	"github.com/stretchr/testify/require"
)

// These tests show, on real files, what saferwall/pe v1.6.5 gets wrong and
// why parsePE reads those structures itself. Each asserts both sides: if a
// later saferwall fixes a bug, its test fails and the workaround can go.

type discard struct{}

func (discard) Log(spelog.Level, ...any) error { return nil }

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "pe", name))
	require.NoError(t, err)
	return data
}

func saferwallParse(t *testing.T, data []byte, opts spe.Options) *spe.File {
	t.Helper()
	opts.Logger = discard{}
	f, err := spe.NewBytes(data, &opts)
	require.NoError(t, err)
	require.NoError(t, f.Parse())
	return f
}

const longName = "a_function_whose_name_is_deliberately_much_longer_than_eighty_bytes_to_test_coff_long_names"

// TestSaferwallCOFFNamesTruncated: saferwall reads COFF string-table names
// of at most 80 bytes, so longer names (Go generics, C++) come out cut.
func TestSaferwallCOFFNamesTruncated(t *testing.T) {
	data := readFixture(t, "x64.dll")
	f := saferwallParse(t, data, spe.Options{MaxCOFFSymbolsCount: 1 << 20, Fast: true})
	var theirs []string
	for i := range f.COFF.SymbolTable {
		n, err := f.COFF.SymbolTable[i].String(f)
		require.NoError(t, err)
		theirs = append(theirs, n)
	}
	require.NotContains(t, theirs, longName)
	require.Contains(t, theirs, longName[:80], "saferwall cuts the name at 80 bytes")

	img, err := Parse(data)
	require.NoError(t, err)
	fn, ok := img.FunctionByName(longName)
	require.True(t, ok, "our COFF reader keeps the full name")
	require.Equal(t, FromPdata|FromSymbol, fn.Found&(FromPdata|FromSymbol))
}

// TestSaferwallX64UnwindHeader: frame_func (chained_x64.s) sets up RBP as a
// frame register at offset 32 (FrameOffset 2, scaled by 16), which
// llvm-readobj prints as "FrameRegister: RBP (0x5)" and "FrameOffset: 0x2".
// saferwall shifts the wrong bits for both fields.
func TestSaferwallX64UnwindHeader(t *testing.T) {
	data := readFixture(t, "x64.dll")
	img, err := Parse(data)
	require.NoError(t, err)
	fn, ok := img.FunctionByName("frame_func")
	require.True(t, ok)
	require.NotZero(t, fn.Unwind)
	hdr, ok := img.Bytes(fn.Unwind, 4)
	require.True(t, ok)
	ours := decodeX64Unwind(hdr)
	require.Equal(t, x64Unwind{Version: 1, Flags: 0, PrologSize: ours.PrologSize, CountOfCodes: ours.CountOfCodes, FrameRegister: 5, FrameOffset: 2}, ours)

	f := saferwallParse(t, data, spe.Options{})
	found := false
	for _, e := range f.Exceptions {
		if e.RuntimeFunction.BeginAddress != fn.RVA {
			continue
		}
		found = true
		require.Equal(t, ours.PrologSize, e.UnwindInfo.SizeOfProlog, "the fields saferwall gets right")
		require.Equal(t, ours.CountOfCodes, e.UnwindInfo.CountOfCodes)
		require.NotEqual(t, ours.FrameRegister, e.UnwindInfo.FrameRegister, "saferwall's frame register")
		require.NotEqual(t, ours.FrameOffset, e.UnwindInfo.FrameOffset, "saferwall's frame offset")
	}
	require.True(t, found)

	// The chained fragment is a function of its own whose Parent is split_func.
	split, ok := img.FunctionByName("split_func")
	require.True(t, ok)
	cold, ok := img.FunctionAt(split.End())
	require.True(t, ok)
	require.Equal(t, split.RVA, cold.Parent)
	require.Equal(t, FromPdata, cold.Extent)
}

// TestSaferwallARM64Pdata: ARM64 .pdata entries are 8 bytes (begin, packed
// unwind word or .xdata RVA); saferwall reads them as 12-byte x64 entries,
// so after the first entry its begin addresses are not function starts.
func TestSaferwallARM64Pdata(t *testing.T) {
	data := readFixture(t, "a64.dll")
	img, err := Parse(data)
	require.NoError(t, err)
	var ours []uint32
	for _, f := range img.Functions {
		if f.Extent == FromPdata {
			ours = append(ours, f.RVA)
		}
	}
	require.Len(t, ours, 4, "llvm-readobj --unwind lists 4 ranges (TestPEOracleFixtures)")

	f := saferwallParse(t, data, spe.Options{})
	var theirs []uint32
	for _, e := range f.Exceptions {
		theirs = append(theirs, e.RuntimeFunction.BeginAddress)
	}
	require.NotEqual(t, ours, theirs)
	require.Len(t, theirs, len(ours)*8/12, "saferwall divides the directory into 12-byte entries")
}

// exportDir returns the file offset of the export directory of data and
// the sections of the file.
func exportDir(t *testing.T, data []byte) (off int64, secs []*pe.Section) {
	t.Helper()
	f, err := pe.NewFile(bytes.NewReader(data))
	require.NoError(t, err)
	oh := f.OptionalHeader.(*pe.OptionalHeader64)
	rva := oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_EXPORT].VirtualAddress
	require.NotZero(t, rva)
	for _, s := range f.Sections {
		if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.Size {
			return int64(s.Offset + rva - s.VirtualAddress), f.Sections
		}
	}
	t.Fatalf("export directory RVA %#x in no section", rva)
	return 0, nil
}

// evilCount is the crafted NumberOfFunctions. saferwall's bound check
// multiplies it by 4 in 32 bits, which wraps to 0x1c: it passes.
const evilCount = 0x40000007

// craftExports returns a copy of x64.dll whose export directory claims
// evilCount functions and no names. saferwall bounds its loop over the
// functions by (end of the section of AddressOfFunctions - AddressOfNames)/4
// in 32 bits and appends one export per iteration (the last address read
// repeats). The real attack (guarded false) leaves AddressOfFunctions in
// .rdata and points AddressOfNames at the later .pdata: the subtraction
// wraps and the loop runs 0x3fffffff times, tens of GiB. The guarded
// variant moves AddressOfFunctions to .pdata and AddressOfNames to .text, so
// the loop runs (end of .pdata - start of .text)/4 times: a few thousand.
func craftExports(t *testing.T, guarded bool) (data []byte, loops int) {
	data = readFixture(t, "x64.dll")
	off, secs := exportDir(t, data)
	find := func(name string) *pe.Section {
		for _, s := range secs {
			if s.Name == name {
				return s
			}
		}
		t.Fatalf("x64.dll has no %s", name)
		return nil
	}
	text, pdata := find(".text"), find(".pdata")
	binary.LittleEndian.PutUint32(data[off+20:], evilCount) // NumberOfFunctions
	binary.LittleEndian.PutUint32(data[off+24:], 0)         // NumberOfNames
	if guarded {
		binary.LittleEndian.PutUint32(data[off+28:], pdata.VirtualAddress) // AddressOfFunctions
		binary.LittleEndian.PutUint32(data[off+32:], text.VirtualAddress)  // AddressOfNames
		return data, int(pdata.VirtualAddress+pdata.Size-text.VirtualAddress) / 4
	}
	binary.LittleEndian.PutUint32(data[off+32:], pdata.VirtualAddress) // AddressOfNames
	return data, 0x3fffffff
}

// TestCraftedExportCount: NumberOfFunctions=0x40000007 is a *FormatError
// naming the field's offset, found before anything is allocated for it.
// saferwall runs out of memory on it (about 1.5 s on the lead's machine, and
// recover() cannot catch that), so it only runs here on a guarded variant
// whose loop stops after a few thousand iterations: from a file with 3
// exports it returns one per iteration, which shows the allocation follows
// the lie.
func TestCraftedExportCount(t *testing.T) {
	data, _ := craftExports(t, false)
	off, _ := exportDir(t, data)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Parse(data)
	runtime.ReadMemStats(&after)
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.True(t, errors.Is(err, ErrMalformed))
	require.Equal(t, off+20, fe.Offset, "the offset of NumberOfFunctions")
	require.Contains(t, fe.What, "NumberOfFunctions")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "bytes allocated while rejecting the lie")

	guarded, loops := craftExports(t, true)
	f := saferwallParse(t, guarded, spe.Options{
		OmitExceptionDirectory: true, OmitResourceDirectory: true, OmitRelocDirectory: true,
	})
	require.Greater(t, loops, 1000)
	require.Greater(t, len(f.Export.Functions), loops-16, "saferwall makes an export per iteration, from a file with 3")
	_, err = Parse(guarded)
	require.ErrorAs(t, err, &fe)
}
