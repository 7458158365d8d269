package pkg

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
)

// loadedAt lays img out as a loader would at base: sections at their RVAs,
// base relocations applied.
func loadedAt(img *image.Image, base uint64) []byte {
	mem := make([]byte, img.Size)
	for _, s := range img.Sections {
		if s.Flags&image.SectionUninit == 0 && uint64(s.RVA)+uint64(len(s.Data)) <= uint64(len(mem)) {
			copy(mem[s.RVA:], s.Data)
		}
	}
	delta := base - img.Base
	for _, r := range img.Relocs {
		if uint64(r.RVA)+uint64(r.Size) > uint64(len(mem)) {
			continue
		}
		switch {
		case r.Size == 8 && img.Format == image.FormatELF:
			binary.LittleEndian.PutUint64(mem[r.RVA:], uint64(r.Addend)+delta)
		case r.Size == 8:
			binary.LittleEndian.PutUint64(mem[r.RVA:], binary.LittleEndian.Uint64(mem[r.RVA:])+delta)
		case r.Size == 4:
			binary.LittleEndian.PutUint32(mem[r.RVA:], binary.LittleEndian.Uint32(mem[r.RVA:])+uint32(delta))
		}
	}
	return mem
}

// VerifyCode accepts what image.VerifyLoaded (the oracle) accepts on every
// fixture build loaded at another base, and refuses what it refuses: the
// package alone verifies the live code.
func TestVerifyCode(t *testing.T) {
	for _, b := range committedBuilds(t) {
		t.Run(b.Name, func(t *testing.T) {
			fb := buildFixture(t, b)
			base := fb.old.Base + 0x10000000
			mem := loadedAt(fb.old, base)
			// The headers, as mapped at RVA 0, for image.VerifyLoaded.
			file, err := os.ReadFile(fixtures.Path(t, b.V1))
			require.NoError(t, err)
			copy(mem[:fb.old.Sections[0].RVA], file)
			require.NoError(t, fb.old.VerifyLoaded(bytes.NewReader(mem), base, nil), "the oracle accepts the layout")
			require.NoError(t, fb.pkg.Base.VerifyCode(bytes.NewReader(mem), base, nil))

			// An entry already patched: refused, unless its original bytes
			// are supplied.
			f := fb.pkg.Functions[0]
			copy(mem[f.OldRVA:], []byte{0xe9, 1, 2, 3, 4})
			err = fb.pkg.Base.VerifyCode(bytes.NewReader(mem), base, nil)
			var ie *image.IdentityMismatchError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, "CodeHash", ie.Field)
			require.ErrorIs(t, fb.old.VerifyLoaded(bytes.NewReader(mem), base, nil), image.ErrIdentityMismatch)
			require.NoError(t, fb.pkg.Base.VerifyCode(bytes.NewReader(mem), base, []Original{{f.OldRVA, f.PreImage}}))

			// Another build (v2) does not verify as v1.
			other := loadedAt(fb.new, base)
			require.ErrorIs(t, fb.pkg.Base.VerifyCode(bytes.NewReader(other), base, nil), image.ErrIdentityMismatch)

			// Short memory is a ReadError.
			var re *image.ReadError
			require.ErrorAs(t, fb.pkg.Base.VerifyCode(bytes.NewReader(mem[:fb.pkg.Base.CodeSections[0].RVA+16]), base, nil), &re)
		})
	}
}
