package pkg

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Header layout (see the package documentation).
const (
	headerSize    = 24
	offVersion    = 8
	offFlags      = 10
	offBodyLen    = 12
	offKeyID      = 16
	flagSigned    = 1
	signatureSize = ed25519.SignatureSize
)

// Marshal writes the package in the canonical encoding: the same Package
// always gives the same bytes. A package signed with Sign (or loaded signed)
// is written with its signature; one changed since then is refused with a
// *SignatureError rather than written with a signature that does not verify.
// A package that breaks a rule of Validate is refused with its error.
func (p *Package) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	signed := p.encode(p.sig)
	if n := int64(len(signed) + signatureSize); n > DefaultLimits.MaxSize {
		return nil, &LimitError{What: "total size", Limit: DefaultLimits.MaxSize, Got: n, Offset: -1}
	}
	if p.sig == nil {
		return signed, nil
	}
	if sha256.Sum256(signed) != p.sig.digest {
		return nil, &SignatureError{KeyID: p.sig.keyID, Why: "package changed after Sign"}
	}
	return append(signed, p.sig.sig[:]...), nil
}

// Sign signs the package with priv: Marshal then writes the signature and
// the ID of priv's public key. Sign again after changing the package.
func (p *Package) Sign(priv ed25519.PrivateKey) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: private key of %d bytes", ErrKey, len(priv))
	}
	if err := p.Validate(); err != nil {
		return err
	}
	s := &signature{keyID: KeyIDOf(priv.Public().(ed25519.PublicKey))}
	signed := p.encode(s)
	copy(s.sig[:], ed25519.Sign(priv, signed))
	s.digest = sha256.Sum256(signed)
	p.sig = s
	return nil
}

// Unsign drops the signature (to change a package and sign it again, or to
// write it unsigned).
func (p *Package) Unsign() { p.sig = nil }

// encode returns header and body (without the signature).
func (p *Package) encode(s *signature) []byte {
	w := &writer{buf: make([]byte, headerSize, headerSize+p.sizeHint())}
	copy(w.buf, Magic)
	binary.LittleEndian.PutUint16(w.buf[offVersion:], Version)
	if s != nil {
		binary.LittleEndian.PutUint16(w.buf[offFlags:], flagSigned)
		copy(w.buf[offKeyID:], s.keyID[:])
	}
	p.encodeBody(w)
	binary.LittleEndian.PutUint32(w.buf[offBodyLen:], uint32(len(w.buf)-headerSize))
	return w.buf
}

// sizeHint is the encoded size, roughly, to allocate once.
func (p *Package) sizeHint() int {
	n := 256 + len(p.Base.Module) + len(p.Description) + len(p.Base.CodeRelocs)*23 + len(p.Base.CodeSections)*8
	for i := range p.Functions {
		f := &p.Functions[i]
		n += 96 + len(f.Name) + len(f.PreImage) + len(f.Blob) + 22*len(f.Relocs)
	}
	for i := range p.Constants {
		n += 8 + len(p.Constants[i].Name) + len(p.Constants[i].Data)
	}
	return n + signatureSize
}

func (p *Package) encodeBody(w *writer) {
	b := &p.Base
	w.u8(uint8(b.Format))
	w.u8(uint8(b.Arch))
	w.str(b.Module)
	w.u64(b.ImageBase)
	w.u32(b.Size)
	id := &b.Identity
	w.u16(id.Machine)
	w.u32(id.TimeDateStamp)
	w.u32(id.CheckSum)
	w.u32(id.SizeOfImage)
	if id.CodeView == nil {
		w.u8(0)
	} else {
		w.u8(1)
		w.raw(id.CodeView.GUID[:])
		w.u32(id.CodeView.Age)
	}
	w.bytes(id.BuildID)
	w.raw(id.CodeHash[:])
	w.u32(uint32(len(b.CodeSections)))
	for _, s := range b.CodeSections {
		w.u32(s.RVA)
		w.u32(s.Size)
	}
	w.u32(uint32(len(b.CodeRelocs)))
	for _, r := range b.CodeRelocs {
		w.u32(r.RVA)
		w.u16(uint16(r.Type))
		w.u8(r.Size)
		w.u64(uint64(r.Addend))
		w.u64(r.File)
	}
	w.u32(p.Sequence)
	w.u32(p.Requires)
	w.str(p.Description)
	w.u32(uint32(len(p.Functions)))
	for i := range p.Functions {
		f := &p.Functions[i]
		w.str(f.Name)
		if f.New {
			w.u8(1)
		} else {
			w.u8(0)
		}
		w.u32(f.OldRVA)
		w.u32(f.OldSize)
		w.bytes(f.PreImage)
		w.raw(f.OldHash[:])
		w.u32(f.NewRVA)
		w.u32(f.Entry)
		w.bytes(f.Blob)
		w.u32(uint32(len(f.Relocs)))
		for _, r := range f.Relocs {
			w.u32(r.Offset)
			w.u8(uint8(r.Kind))
			w.u32(r.Aux)
			w.u8(uint8(r.To))
			w.u32(r.Index)
			w.u64(uint64(r.Addend))
		}
	}
	w.u32(uint32(len(p.Constants)))
	for i := range p.Constants {
		c := &p.Constants[i]
		w.str(c.Name)
		w.bytes(c.Data)
	}
}

// writer appends little-endian fields.
type writer struct{ buf []byte }

func (w *writer) u8(v uint8)     { w.buf = append(w.buf, v) }
func (w *writer) u16(v uint16)   { w.buf = binary.LittleEndian.AppendUint16(w.buf, v) }
func (w *writer) u32(v uint32)   { w.buf = binary.LittleEndian.AppendUint32(w.buf, v) }
func (w *writer) u64(v uint64)   { w.buf = binary.LittleEndian.AppendUint64(w.buf, v) }
func (w *writer) raw(b []byte)   { w.buf = append(w.buf, b...) }
func (w *writer) bytes(b []byte) { w.u32(uint32(len(b))); w.raw(b) }
func (w *writer) str(s string)   { w.u32(uint32(len(s))); w.buf = append(w.buf, s...) }
