package image

import (
	"bytes"
	"cmp"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fuzzSeeds are small real modules of every supported kind.
var fuzzSeeds = []string{
	"testdata/textrel-amd64.elf",
	"testdata/textrel-arm64.elf",
	"testdata/textrel-x64.dll",
	"../testdata/bin/c-v1-amd64.elf",
	"../testdata/bin/c-v1-amd64.exe",
	"../testdata/bin/c-v1-arm64.exe",
}

// FuzzParse feeds Parse real modules, truncated and mutated. Parse must never
// panic, and must return either an error matching ErrMalformed or
// ErrUnsupported, or an image that keeps every documented invariant.
func FuzzParse(f *testing.F) {
	for _, path := range fuzzSeeds {
		data, err := os.ReadFile(filepath.FromSlash(path))
		if err != nil {
			f.Fatalf("seed %s: %v", path, err)
		}
		f.Add(data)
		for _, n := range []int{2, 4, 16, 63, 64, 200, 0x400, len(data) / 2, len(data) - 1} {
			if n < len(data) {
				f.Add(data[:n])
			}
		}
		// A few header fields set to extremes.
		for _, off := range []int{0x20, 0x28, 0x36, 0x38, 0x3a, 0x3c} {
			for _, v := range []byte{0x00, 0x7f, 0xff} {
				m := bytes.Clone(data)
				m[off] = v
				m[off+1] = v
				f.Add(m)
			}
		}
	}
	f.Fuzz(checkParse)
}

// checkImage fails t when img breaks an invariant the Image type documents.
func checkImage(t *testing.T, img *Image) {
	t.Helper()
	if img.Format != FormatPE && img.Format != FormatELF {
		t.Fatalf("format %v", img.Format)
	}
	if img.Arch != AMD64 && img.Arch != ARM64 {
		t.Fatalf("arch %v", img.Arch)
	}
	for i, s := range img.Sections {
		if uint64(len(s.Data)) > uint64(s.Size) && img.Format == FormatELF {
			t.Fatalf("section %d %q: %d bytes of data, size %d", i, s.Name, len(s.Data), s.Size)
		}
	}
	if !slices.IsSortedFunc(img.Symbols, func(a, b Symbol) int {
		return cmp.Or(cmp.Compare(a.RVA, b.RVA), cmp.Compare(a.Name, b.Name))
	}) {
		t.Fatal("symbols not sorted")
	}
	if !slices.IsSortedFunc(img.Relocs, func(a, b Reloc) int { return cmp.Compare(a.RVA, b.RVA) }) {
		t.Fatal("relocations not sorted")
	}
	if !slices.IsSortedFunc(img.Exports, func(a, b Export) int { return cmp.Compare(a.Ordinal, b.Ordinal) }) {
		t.Fatal("exports not sorted")
	}
	for i := range img.Functions {
		fn := &img.Functions[i]
		if fn.Size == 0 {
			t.Fatalf("function %d %q at %#x has no size", i, fn.Name, fn.RVA)
		}
		if i > 0 && img.Functions[i-1].End() > fn.RVA {
			t.Fatalf("functions %d and %d overlap or are unsorted (%#x+%#x, %#x)", i-1, i, img.Functions[i-1].RVA, img.Functions[i-1].Size, fn.RVA)
		}
		s, ok := img.SectionAt(fn.RVA)
		if !ok || s.Flags&SectionExec == 0 {
			// SectionAt returns the first section containing the start;
			// accept any executable one containing the whole function.
			ok = false
			for j := range img.Sections {
				x := &img.Sections[j]
				if x.Flags&SectionExec != 0 && x.Contains(fn.RVA) && uint64(fn.End()) <= uint64(x.RVA)+uint64(x.Size) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("function %q at %#x+%#x is not inside an executable section", fn.Name, fn.RVA, fn.Size)
			}
		}
		if got, ok := img.FunctionAt(fn.RVA); !ok || got != fn {
			t.Fatalf("FunctionAt(%#x) does not find function %d", fn.RVA, i)
		}
		if fn.Name != "" {
			if got, ok := img.FunctionByName(fn.Name); !ok || got.Name != fn.Name {
				t.Fatalf("FunctionByName(%q) fails", fn.Name)
			}
		}
	}
	var code []*Section
	for i := range img.Sections {
		if img.Sections[i].Flags&SectionExec != 0 && img.Sections[i].Size > 0 {
			code = append(code, &img.Sections[i])
		}
	}
	if h, err := codeHash(img, code); err != nil || h != img.Identity.CodeHash {
		t.Fatalf("CodeHash does not match the sections (%v)", err)
	}
}

// checkParse is the property both fuzz targets check: Parse never panics,
// and returns either a consistent image or a typed error (ErrMalformed or
// ErrUnsupported) whose offset lies inside the input.
func checkParse(t *testing.T, data []byte) {
	img, err := Parse(data)
	if err != nil {
		if img != nil {
			t.Fatalf("image and error: %v", err)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupported) {
			t.Fatalf("error matches neither ErrMalformed nor ErrUnsupported: %T %v", err, err)
		}
		var fe *FormatError
		if errors.As(err, &fe) && fe.Offset > int64(len(data)) {
			t.Fatalf("error offset %#x beyond the input (%#x bytes): %v", fe.Offset, len(data), err)
		}
		return
	}
	checkImage(t, img)
}
