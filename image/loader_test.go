package image

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// loadAt maps a parsed module into a fresh buffer as if the OS loader had
// put it at address base: headers and sections (PE) or PT_LOAD segments
// (ELF) at their RVAs, then every base relocation applied (PE DIR64 and
// HIGHLOW add base - img.Base to the bytes in place; ELF RELATIVE writes
// base - img.Base + addend). The buffer is what VerifyLoaded reads through a
// bytes.Reader (offset = RVA).
func loadAt(t testing.TB, img *Image, file []byte, base uint64) []byte {
	t.Helper()
	mem := make([]byte, img.Size)
	switch img.Format {
	case FormatELF:
		f, err := elf.NewFile(bytes.NewReader(file))
		require.NoError(t, err)
		for _, p := range f.Progs {
			if p.Type != elf.PT_LOAD {
				continue
			}
			copy(mem[p.Vaddr-img.Base:], file[p.Off:p.Off+p.Filesz])
		}
	case FormatPE:
		le := binary.LittleEndian
		lfanew := le.Uint32(file[0x3c:])
		sizeOfHeaders := le.Uint32(file[lfanew+24+60:])
		copy(mem, file[:min(int(sizeOfHeaders), len(file))])
		for _, s := range img.Sections {
			copy(mem[s.RVA:s.RVA+s.Size], s.Data)
		}
	default:
		t.Fatalf("loadAt: format %s", img.Format)
	}
	delta := base - img.Base
	le := binary.LittleEndian
	for _, r := range img.Relocs {
		switch {
		case img.Format == FormatELF && r.Size == 8:
			le.PutUint64(mem[r.RVA:], uint64(r.Addend)+delta)
		case r.Size == 8:
			le.PutUint64(mem[r.RVA:], le.Uint64(mem[r.RVA:])+delta)
		case r.Size == 4:
			le.PutUint32(mem[r.RVA:], le.Uint32(mem[r.RVA:])+uint32(delta))
		}
	}
	return mem
}

// fixture reads a file of image/testdata and parses it.
func fixture(t testing.TB, name string) (*Image, []byte) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	img, err := Parse(data)
	require.NoError(t, err, name)
	return img, data
}
