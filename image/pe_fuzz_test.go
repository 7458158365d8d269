package image

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
)

// peFuzzSeeds are small PE files of both machines: this package's own
// (chained .pdata, exports, long COFF names, packed and unpacked ARM64
// unwind) and the project's ARM64 fixture.
var peFuzzSeeds = []string{
	"testdata/pe/x64.dll",
	"testdata/pe/a64.dll",
	"../testdata/bin/c-v1-arm64.exe",
}

// peMutations returns copies of data with the PE structures parsePE reads
// itself pointed out of bounds or set to extremes: data directory entries,
// section headers, the COFF symbol table, the first .pdata entry and the
// export directory's counts.
func peMutations(data []byte) [][]byte {
	f, err := pe.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]byte
	put := func(off int, v uint32) {
		if off >= 0 && off+4 <= len(data) {
			m := bytes.Clone(data)
			binary.LittleEndian.PutUint32(m[off:], v)
			out = append(out, m)
		}
	}
	lfanew := int(binary.LittleEndian.Uint32(data[0x3c:]))
	fh := lfanew + 4
	opt := fh + 20
	for _, v := range []uint32{0, 0xffffffff, 0x7fffffff, uint32(len(data))} {
		put(fh+8, v)  // PointerToSymbolTable
		put(fh+12, v) // NumberOfSymbols
		put(opt+108, v)
	}
	put(fh, 0x14c|0x0200<<16)          // machine i386, NumberOfSections 2
	put(fh, peMachineARM64|0xffff<<16) // 65535 sections
	for _, dir := range []int{peDirExport, peDirImport, peDirException, peDirBaseReloc, peDirDebug} {
		e := opt + 112 + 8*dir
		for _, v := range []uint32{0xffffffff, 0x7ffffff0, 1} {
			put(e, v)
			put(e+4, v)
		}
	}
	sec := opt + int(f.FileHeader.SizeOfOptionalHeader)
	for i := range len(f.Sections) {
		h := sec + 40*i
		put(h+8, 0xfffffff0)  // VirtualSize
		put(h+12, 0xfffff000) // VirtualAddress
		put(h+16, 0x7fffffff) // SizeOfRawData
		put(h+20, 0xfffffe00) // PointerToRawData
		put(h+36, 0xe0000020) // RWX code
	}
	rvaOff := func(rva uint32) int {
		for _, s := range f.Sections {
			if rva >= s.VirtualAddress && rva < s.VirtualAddress+s.Size {
				return int(s.Offset + rva - s.VirtualAddress)
			}
		}
		return -1
	}
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return out
	}
	if d := oh.DataDirectory[peDirException]; d.VirtualAddress != 0 {
		if p := rvaOff(d.VirtualAddress); p >= 0 {
			put(p, 0xfffffff0)   // begin
			put(p+4, 0)          // end before begin / .xdata RVA 0
			put(p+4, 0xfffffffc) // far .xdata
			put(p+4, 0xffffffff) // ARM64 flag 3
			put(p+8, 0xffffffff) // x64 unwind: indirect, out of range
		}
	}
	if d := oh.DataDirectory[peDirExport]; d.VirtualAddress != 0 {
		if p := rvaOff(d.VirtualAddress); p >= 0 {
			put(p+20, evilCount)
			put(p+24, evilCount)
			put(p+28, 0xfffffff0)
			put(p+36, d.VirtualAddress) // ordinals overlapping the directory
		}
	}
	return out
}

// FuzzParsePE feeds Parse small PE files, truncated and with their
// structures corrupted (peMutations). Parse must never panic, and must
// return either an error matching ErrMalformed or ErrUnsupported, or an image
// that keeps every documented invariant (checkImage).
func FuzzParsePE(f *testing.F) {
	for _, path := range peFuzzSeeds {
		data, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			f.Fatalf("seed %s: %v", path, err)
		}
		f.Add(data)
		for _, n := range []int{0x40, 0x80, 0x100, 0x200, 0x400, len(data) / 2, len(data) - 1} {
			if n < len(data) {
				f.Add(data[:n])
			}
		}
		for _, m := range peMutations(data) {
			f.Add(m)
		}
	}
	f.Fuzz(checkParse)
}
