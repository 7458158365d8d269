package pkg

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Original is bytes of the old image to take instead of the live ones when
// hashing: the entries a patch already rewrote (AppliedFunction.Original,
// or a function's PreImage).
type Original struct {
	RVA   uint32
	Bytes []byte
}

// VerifyCode checks that the module loaded at moduleBase, read through mem
// (offsets from the load address, like image.Image.VerifyLoaded), has exactly
// the base image's code, without the old file: it reads every code section,
// undoes the base relocations the loader applied (PE: subtracts the load
// delta; ELF: a word equal to addend + delta is the file's bytes), puts back
// originals, and compares the SHA-256 with Identity.CodeHash.
//
// Header fields (machine, timestamp, CodeView, build ID) are not read here;
// a mismatch is an *image.IdentityMismatchError with Field "CodeHash" (RVA
// 0: without the old bytes the first difference is unknown), a failed read
// an *image.ReadError.
func (b *Base) VerifyCode(mem io.ReaderAt, moduleBase uint64, originals []Original) error {
	delta := moduleBase - b.ImageBase
	h := sha256.New()
	le := binary.LittleEndian
	next := 0 // first code reloc not yet applied
	for _, s := range b.CodeSections {
		live := make([]byte, s.Size)
		if n, err := mem.ReadAt(live, int64(s.RVA)); n != len(live) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return &image.ReadError{RVA: s.RVA, Size: len(live), Err: err}
		}
		end := uint64(s.RVA) + uint64(s.Size)
		for ; next < len(b.CodeRelocs) && uint64(b.CodeRelocs[next].RVA) < end; next++ {
			r := b.CodeRelocs[next]
			if r.RVA < s.RVA || uint64(r.RVA)+uint64(r.Size) > end {
				continue
			}
			off := r.RVA - s.RVA
			switch r.Size {
			case 8:
				v := le.Uint64(live[off:]) - delta
				if b.Format == image.FormatELF && v == uint64(r.Addend) {
					v = r.File
				}
				le.PutUint64(live[off:], v)
			case 4:
				le.PutUint32(live[off:], le.Uint32(live[off:])-uint32(delta))
			}
		}
		for _, o := range originals {
			for i, c := range o.Bytes {
				if a := uint64(o.RVA) + uint64(i); a >= uint64(s.RVA) && a < end {
					live[a-uint64(s.RVA)] = c
				}
			}
		}
		h.Write(live)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if sum != b.Identity.CodeHash {
		return &image.IdentityMismatchError{Field: "CodeHash", Want: fmt.Sprintf("%x", b.Identity.CodeHash), Got: fmt.Sprintf("%x", sum)}
	}
	return nil
}
