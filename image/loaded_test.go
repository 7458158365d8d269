package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// elfFixtures are the committed PIE fixtures with relocations inside .text.
var elfFixtures = []string{"textrel-amd64.elf", "textrel-arm64.elf"}

// codeRelocs returns the base relocations that fall in executable sections.
func codeRelocs(img *Image) []Reloc {
	var out []Reloc
	for _, r := range img.Relocs {
		if s, ok := img.SectionAt(r.RVA); ok && s.Flags&SectionExec != 0 {
			out = append(out, r)
		}
	}
	return out
}

// rawCodeHash hashes the executable sections of mem as they are, without
// undoing relocations: what a naive comparison would do.
func rawCodeHash(img *Image, mem []byte) [32]byte {
	h := sha256.New()
	for _, s := range img.Sections {
		if s.Flags&SectionExec != 0 {
			h.Write(mem[s.RVA : s.RVA+s.Size])
		}
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func TestVerifyLoadedELFRelocated(t *testing.T) {
	for _, name := range elfFixtures {
		t.Run(name, func(t *testing.T) {
			img, file := fixture(t, name)
			rel := codeRelocs(img)
			require.NotEmpty(t, rel, "fixture must have relocations in code for this test to mean anything")
			for _, base := range []uint64{img.Base, img.Base + 0x7f3a12340000, img.Base + 0x1000} {
				mem := loadAt(t, img, file, base)
				if base != img.Base {
					require.NotEqual(t, img.Identity.CodeHash, rawCodeHash(img, mem), "relocated code must differ from the file")
				}
				require.NoError(t, img.VerifyLoaded(bytes.NewReader(mem), base, nil), "base %#x", base)
			}
		})
	}
}

func TestVerifyLoadedELFMismatch(t *testing.T) {
	for _, name := range elfFixtures {
		img, file := fixture(t, name)
		base := img.Base + 0x55aa00000000
		leaf, ok := img.FunctionByName("fx_leaf")
		require.True(t, ok)
		site := codeRelocs(img)[0].RVA
		bid := bytes.Index(file, img.Identity.BuildID)
		require.Positive(t, bid)

		tests := []struct {
			name   string
			mutate func(mem []byte)
			opts   *VerifyOptions
			field  string
			rva    uint32 // 0: any
			inWord bool   // rva is anywhere in the 8-byte word at rva
		}{
			{name: "code byte", mutate: func(m []byte) { m[leaf.RVA+1] ^= 0x40 }, field: "CodeHash", rva: leaf.RVA + 1},
			{name: "last code byte", mutate: func(m []byte) { m[leaf.End()-1] ^= 1 }, field: "CodeHash", rva: leaf.End() - 1},
			{name: "relocated word", mutate: func(m []byte) { m[site+2] ^= 0x10 }, field: "CodeHash", rva: site, inWord: true},
			{name: "ignored byte", mutate: func(m []byte) { m[leaf.RVA+1] ^= 0x40 }, opts: &VerifyOptions{Ignore: []Range{{RVA: leaf.RVA, Size: 4}}}},
			{name: "ignored reloc word", mutate: func(m []byte) { m[site+2] ^= 0x10 }, opts: &VerifyOptions{Ignore: []Range{{RVA: site, Size: 8}}}},
			{name: "ignore elsewhere", mutate: func(m []byte) { m[leaf.RVA+1] ^= 0x40 }, opts: &VerifyOptions{Ignore: []Range{{RVA: leaf.RVA + 2, Size: 2}}}, field: "CodeHash", rva: leaf.RVA + 1},
			{name: "machine", mutate: func(m []byte) { m[18] ^= 0x80 }, field: "Machine"},
			{name: "build id", mutate: func(m []byte) {
				// The build ID lives in the first segment: file offset = RVA.
				m[bid+3] ^= 0xff
			}, field: "BuildID"},
			{name: "not an ELF header", mutate: func(m []byte) { m[1] = 'X' }, field: "Header"},
		}
		for _, tc := range tests {
			t.Run(name+"/"+tc.name, func(t *testing.T) {
				mem := loadAt(t, img, file, base)
				tc.mutate(mem)
				err := img.VerifyLoaded(bytes.NewReader(mem), base, tc.opts)
				if tc.field == "" {
					require.NoError(t, err)
					return
				}
				require.ErrorIs(t, err, ErrIdentityMismatch)
				var me *IdentityMismatchError
				require.ErrorAs(t, err, &me)
				require.Equal(t, tc.field, me.Field, "%v", err)
				require.NotEqual(t, me.Want, me.Got)
				switch {
				case tc.inWord:
					require.GreaterOrEqual(t, me.RVA, tc.rva, "%v", err)
					require.Less(t, me.RVA, tc.rva+8, "%v", err)
				case tc.rva != 0:
					require.Equal(t, tc.rva, me.RVA, "%v", err)
				}
			})
		}
	}
}

// holeReader fails reads that touch [hole, hole+n).
type holeReader struct {
	r       io.ReaderAt
	hole, n int64
}

var errHole = errors.New("page not mapped")

func (h holeReader) ReadAt(p []byte, off int64) (int, error) {
	if off < h.hole+h.n && off+int64(len(p)) > h.hole {
		return 0, errHole
	}
	return h.r.ReadAt(p, off)
}

func TestVerifyLoadedUnreadable(t *testing.T) {
	img, file := fixture(t, "textrel-amd64.elf")
	mem := loadAt(t, img, file, img.Base)
	text, ok := img.FunctionByName("fx_leaf")
	require.True(t, ok)
	sec, ok := img.SectionAt(text.RVA)
	require.True(t, ok)

	for _, tc := range []struct {
		name string
		r    io.ReaderAt
		rva  uint32
		want error
	}{
		{"header", holeReader{bytes.NewReader(mem), 0, 1}, 0, errHole},
		{"code", holeReader{bytes.NewReader(mem), int64(text.RVA), 1}, sec.RVA, errHole},
		{"short", bytes.NewReader(mem[:sec.RVA+1]), sec.RVA, io.EOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := img.VerifyLoaded(tc.r, img.Base, nil)
			var re *ReadError
			require.ErrorAs(t, err, &re, "%v", err)
			require.Equal(t, tc.rva, re.RVA)
			require.ErrorIs(t, err, tc.want)
			require.Contains(t, err.Error(), fmt.Sprintf("%#x", tc.rva))
		})
	}
}

// peFixture parses a PE file and checks it is one.
func peFixture(t *testing.T, path string) (*Image, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	img, err := Parse(data)
	require.NoError(t, err, path)
	require.Equal(t, FormatPE, img.Format)
	return img, data
}

func TestVerifyLoadedPE(t *testing.T) {
	paths := []string{
		testenv.Testdata(t, "bin", "c-v1-amd64.exe"),
		testenv.Testdata(t, "bin", "c-v1-arm64.exe"),
		filepath.Join("testdata", "textrel-x64.dll"),
	}
	codeRelocated := 0
	for _, path := range paths {
		img, file := peFixture(t, path)
		le := binary.LittleEndian
		lfanew := le.Uint32(file[0x3c:])
		opt := lfanew + 24
		leaf := img.Functions[len(img.Functions)/2]
		require.NotNil(t, img.Identity.CodeView, path)
		codeRelocated += len(codeRelocs(img))

		// Bases above, below (negative delta) and at the preferred one.
		for _, base := range []uint64{img.Base, img.Base + 0x7ff600000000, img.Base - 0x100000000} {
			mem := loadAt(t, img, file, base)
			if base != img.Base && len(codeRelocs(img)) > 0 {
				require.NotEqual(t, img.Identity.CodeHash, rawCodeHash(img, mem))
			}
			require.NoError(t, img.VerifyLoaded(bytes.NewReader(mem), base, nil), "%s at %#x", path, base)
		}

		base := img.Base + 0x10000000
		for _, tc := range []struct {
			name   string
			mutate func(m []byte)
			field  string
			rva    uint32
		}{
			{"machine", func(m []byte) { m[lfanew+4] ^= 1 }, "Machine", 0},
			{"timestamp", func(m []byte) { m[lfanew+8] ^= 1 }, "TimeDateStamp", 0},
			{"checksum", func(m []byte) { m[opt+64] ^= 1 }, "CheckSum", 0},
			{"size of image", func(m []byte) { m[opt+57] ^= 0x10 }, "SizeOfImage", 0},
			{"codeview guid", func(m []byte) {
				i := bytes.Index(m, img.Identity.CodeView.GUID[:])
				require.Positive(t, i)
				m[i+5] ^= 1
			}, "CodeView", 0},
			{"codeview age", func(m []byte) {
				i := bytes.Index(m, img.Identity.CodeView.GUID[:])
				m[i+16] ^= 2
			}, "CodeView", 0},
			{"code byte", func(m []byte) { m[leaf.RVA] ^= 0x80 }, "CodeHash", leaf.RVA},
			{"last code byte", func(m []byte) {
				s, _ := img.SectionAt(leaf.RVA)
				m[s.RVA+s.Size-1] ^= 0x80
			}, "CodeHash", 0},
			{"pe signature", func(m []byte) { m[lfanew] = 'X' }, "Header", 0},
		} {
			t.Run(filepath.Base(path)+"/"+tc.name, func(t *testing.T) {
				mem := loadAt(t, img, file, base)
				tc.mutate(mem)
				err := img.VerifyLoaded(bytes.NewReader(mem), base, nil)
				var me *IdentityMismatchError
				require.ErrorAs(t, err, &me)
				require.Equal(t, tc.field, me.Field, "%v", err)
				if tc.rva != 0 {
					require.Equal(t, tc.rva, me.RVA, "%v", err)
				}
				t.Log(err)
			})
		}
	}
	require.Positive(t, codeRelocated, "at least one PE fixture must relocate code")
}

// TestVerifyLoadedOtherBuild loads one build and verifies it against another:
// the identity field that tells them apart is named. When the headers are
// forged to match, the code hash still refuses, at a changed function.
func TestVerifyLoadedOtherBuild(t *testing.T) {
	bin := func(n string) string { return testenv.Testdata(t, "bin", n) }
	for _, tc := range []struct{ want, loaded, field string }{
		{"c-v1-amd64.exe", "c-v1-rebuilt-amd64.exe", "TimeDateStamp"},
		{"c-v1-amd64.exe", "c-v2-amd64.exe", "CheckSum"},
		{"c-v1-arm64.exe", "c-v1-rebuilt-arm64.exe", "TimeDateStamp"},
		{"c-v1-amd64.elf", "c-v1-rebuilt-amd64.elf", "BuildID"},
		{"c-v1-amd64.elf", "c-v2-amd64.elf", "BuildID"},
		{"c-v1-arm64.elf", "c-v2-arm64.elf", "BuildID"},
	} {
		t.Run(tc.loaded, func(t *testing.T) {
			want, _ := peOrELF(t, bin(tc.want))
			got, gotFile := peOrELF(t, bin(tc.loaded))
			base := want.Base + 0x20000000
			mem := loadAt(t, got, gotFile, base)
			err := want.VerifyLoaded(bytes.NewReader(mem), base, nil)
			var me *IdentityMismatchError
			require.ErrorAs(t, err, &me)
			require.Equal(t, tc.field, me.Field, "%v", err)

			if want.Format != FormatELF || bytes.Equal(want.Identity.CodeHash[:], got.Identity.CodeHash[:]) {
				return
			}
			// Forge v1's build ID into the v2 memory: the code still differs.
			i := bytes.Index(mem, got.Identity.BuildID)
			require.Positive(t, i)
			copy(mem[i:], want.Identity.BuildID)
			err = want.VerifyLoaded(bytes.NewReader(mem), base, nil)
			require.ErrorAs(t, err, &me)
			require.Equal(t, "CodeHash", me.Field, "%v", err)
			f, ok := want.FunctionAt(me.RVA)
			require.True(t, ok, "first difference %#x is inside a function", me.RVA)
			t.Logf("v2 differs from v1 first at %#x in %s", me.RVA, f.Name)
		})
	}
}

func peOrELF(t *testing.T, path string) (*Image, []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	img, err := Parse(data)
	require.NoError(t, err, path)
	return img, data
}
