package pkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"unicode/utf8"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Limits bound what Load accepts. A zero field takes its default.
type Limits struct {
	MaxSize       int64 // whole file; default 64 MiB
	MaxFunctions  int   // default 65536
	MaxBlob       int   // bytes of one function's blob; default 1 MiB
	MaxRelocs     int   // relocations of one function; default 65536
	MaxConstants  int   // default 65536
	MaxConstant   int   // bytes of one constant; default 1 MiB
	MaxCodeRelocs int   // base relocations inside the old code; default 1<<20
	MaxString     int   // bytes of a name, the module or the description; default 64 KiB
	MaxPreImage   int   // bytes of one pre-image; default 64
	MaxBuildID    int   // bytes of the build ID; default 64
	MaxSections   int   // code sections; default 256
}

// DefaultLimits are the limits a zero Limits stands for. Marshal refuses to
// write what Load with these limits would refuse.
var DefaultLimits = Limits{
	MaxSize:       64 << 20,
	MaxFunctions:  1 << 16,
	MaxBlob:       1 << 20,
	MaxRelocs:     1 << 16,
	MaxConstants:  1 << 16,
	MaxConstant:   1 << 20,
	MaxCodeRelocs: 1 << 20,
	MaxString:     64 << 10,
	MaxPreImage:   64,
	MaxBuildID:    64,
	MaxSections:   256,
}

// withDefaults fills zero fields from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxSize > 0 {
		d.MaxSize = l.MaxSize
	}
	set := func(dst *int, v int) {
		if v > 0 {
			*dst = v
		}
	}
	set(&d.MaxFunctions, l.MaxFunctions)
	set(&d.MaxBlob, l.MaxBlob)
	set(&d.MaxRelocs, l.MaxRelocs)
	set(&d.MaxConstants, l.MaxConstants)
	set(&d.MaxConstant, l.MaxConstant)
	set(&d.MaxCodeRelocs, l.MaxCodeRelocs)
	set(&d.MaxString, l.MaxString)
	set(&d.MaxPreImage, l.MaxPreImage)
	set(&d.MaxBuildID, l.MaxBuildID)
	set(&d.MaxSections, l.MaxSections)
	return d
}

// LoadOptions say which packages Load accepts.
type LoadOptions struct {
	// TrustedKeys are the public keys a signature may verify against; the
	// package's key ID picks the key.
	TrustedKeys []ed25519.PublicKey
	// AllowUnsigned accepts a package without a signature. A signed package
	// is verified all the same.
	AllowUnsigned bool
	// Limits bound sizes and counts; the zero value is DefaultLimits.
	Limits Limits
}

// Load reads a package. In order, and before any further byte is
// interpreted: the total size against Limits.MaxSize, the magic, the version,
// the flags and the body length of the fixed header; then the signature
// (key ID looked up in TrustedKeys, ed25519 over header and body), or, for
// an unsigned package, opts.AllowUnsigned. Only then is the body decoded,
// bounded by opts.Limits, and checked against every rule of Validate.
//
// Errors: *LimitError (ErrTooLarge), *FormatError (ErrMalformed),
// *VersionError (ErrVersion), *SignatureError (ErrSignature), ErrUnsigned.
// Load does not keep a reference to data.
func Load(data []byte, opts LoadOptions) (*Package, error) {
	lim := opts.Limits.withDefaults()
	if int64(len(data)) > lim.MaxSize {
		return nil, &LimitError{What: "total size", Limit: lim.MaxSize, Got: int64(len(data)), Offset: -1}
	}
	if len(data) < headerSize {
		return nil, &FormatError{Offset: int64(len(data)), What: "header truncated"}
	}
	if string(data[:len(Magic)]) != Magic {
		return nil, &FormatError{Offset: 0, What: "magic"}
	}
	if v := binary.LittleEndian.Uint16(data[offVersion:]); v != Version {
		return nil, &VersionError{Got: v}
	}
	flags := binary.LittleEndian.Uint16(data[offFlags:])
	if flags&^flagSigned != 0 {
		return nil, &FormatError{Offset: offFlags, What: fmt.Sprintf("unknown flags %#x", flags)}
	}
	var keyID KeyID
	copy(keyID[:], data[offKeyID:])
	signed := flags&flagSigned != 0
	if !signed && keyID != (KeyID{}) {
		return nil, &FormatError{Offset: offKeyID, What: "key ID in an unsigned package"}
	}
	bodyLen := int64(binary.LittleEndian.Uint32(data[offBodyLen:]))
	want := headerSize + bodyLen
	if signed {
		want += signatureSize
	}
	if want != int64(len(data)) {
		return nil, &FormatError{Offset: offBodyLen, What: fmt.Sprintf("body length %d does not match a file of %d bytes", bodyLen, len(data))}
	}
	end := headerSize + int(bodyLen)
	var sig *signature
	if signed {
		s, err := verify(data[:end], data[end:], keyID, opts.TrustedKeys)
		if err != nil {
			return nil, err
		}
		sig = s
	} else if !opts.AllowUnsigned {
		return nil, ErrUnsigned
	}
	r := &reader{data: data[:end], off: headerSize, lim: lim}
	p := r.body()
	if r.err != nil {
		return nil, r.err
	}
	if r.off != end {
		return nil, &FormatError{Offset: int64(r.off), What: "trailing bytes after the constants"}
	}
	if err := p.validate(lim, r.funcOffs); err != nil {
		return nil, err
	}
	p.sig = sig
	return p, nil
}

// verify checks the signature over signed with the trusted key named keyID.
func verify(signed, sig []byte, keyID KeyID, trusted []ed25519.PublicKey) (*signature, error) {
	for _, k := range trusted {
		if len(k) != ed25519.PublicKeySize || KeyIDOf(k) != keyID {
			continue
		}
		if !ed25519.Verify(k, signed, sig) {
			return nil, &SignatureError{KeyID: keyID, Why: "bad signature"}
		}
		s := &signature{keyID: keyID, digest: sha256.Sum256(signed)}
		copy(s.sig[:], sig)
		return s, nil
	}
	return nil, &SignatureError{KeyID: keyID, Why: "unknown key (not among the trusted keys)"}
}

// reader decodes the body; the first error sticks and every later read
// returns zero values.
type reader struct {
	data     []byte
	off      int
	err      error
	lim      Limits
	funcOffs []int // offset of each function record, for Validate's errors
}

func (r *reader) fail(off int, what string) {
	if r.err == nil {
		r.err = &FormatError{Offset: int64(off), What: what}
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.data)-r.off {
		r.fail(r.off, what+" truncated")
		return nil
	}
	b := r.data[r.off : r.off+n]
	r.off += n
	return b
}

func (r *reader) u8(what string) uint8 {
	if b := r.take(1, what); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16(what string) uint16 {
	if b := r.take(2, what); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if b := r.take(4, what); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64(what string) uint64 {
	if b := r.take(8, what); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// flag reads a byte that must be 0 or 1.
func (r *reader) flag(what string) bool {
	at := r.off
	v := r.u8(what)
	if v > 1 {
		r.fail(at, what+" is neither 0 nor 1")
	}
	return v == 1
}

// bytes reads a length-prefixed byte string of at most max bytes, copied.
func (r *reader) bytes(what string, max int) []byte {
	at := r.off
	n := r.u32(what + " length")
	if r.err != nil {
		return nil
	}
	if int64(n) > int64(max) {
		r.err = &LimitError{What: what, Limit: int64(max), Got: int64(n), Offset: int64(at)}
		return nil
	}
	b := r.take(int(n), what)
	if b == nil {
		return nil
	}
	return bytes.Clone(b)
}

// str reads a length-prefixed UTF-8 string.
func (r *reader) str(what string) string {
	at := r.off
	b := r.bytes(what, r.lim.MaxString)
	if r.err == nil && !utf8.Valid(b) {
		r.fail(at, what+" is not UTF-8")
	}
	return string(b)
}

// count reads an element count, bounded by max and by the bytes left at
// minSize bytes per element, so nothing is allocated from an unchecked count.
func (r *reader) count(what string, max, minSize int) int {
	at := r.off
	n := r.u32(what + " count")
	if r.err != nil {
		return 0
	}
	if int64(n) > int64(max) {
		r.err = &LimitError{What: what, Limit: int64(max), Got: int64(n), Offset: int64(at)}
		return 0
	}
	if int64(n)*int64(minSize) > int64(len(r.data)-r.off) {
		r.fail(at, fmt.Sprintf("%s count %d exceeds the bytes left", what, n))
		return 0
	}
	return int(n)
}

// Minimum encoded sizes of repeated records.
const (
	minSection   = 8
	minCodeReloc = 23
	minFunction  = 4 + 1 + 4 + 4 + 4 + 32 + 4 + 4 + 4 + 4
	minReloc     = 22
	minConstant  = 8
)

func (r *reader) body() *Package {
	p := &Package{}
	b := &p.Base
	b.Format = image.Format(r.u8("format"))
	b.Arch = image.Arch(r.u8("arch"))
	b.Module = r.str("module")
	b.ImageBase = r.u64("image base")
	b.Size = r.u32("image size")
	id := &b.Identity
	id.Machine = r.u16("machine")
	id.TimeDateStamp = r.u32("timestamp")
	id.CheckSum = r.u32("checksum")
	id.SizeOfImage = r.u32("size of image")
	if r.flag("codeview present") {
		cv := &image.CodeView{}
		copy(cv.GUID[:], r.take(16, "codeview GUID"))
		cv.Age = r.u32("codeview age")
		id.CodeView = cv
	}
	if bid := r.bytes("build ID", r.lim.MaxBuildID); len(bid) > 0 {
		id.BuildID = bid
	}
	copy(id.CodeHash[:], r.take(32, "code hash"))
	if n := r.count("code sections", r.lim.MaxSections, minSection); n > 0 {
		b.CodeSections = make([]image.Range, n)
		for i := range b.CodeSections {
			b.CodeSections[i] = image.Range{RVA: r.u32("section RVA"), Size: r.u32("section size")}
		}
	}
	if n := r.count("code relocs", r.lim.MaxCodeRelocs, minCodeReloc); n > 0 {
		b.CodeRelocs = make([]CodeReloc, n)
		for i := range b.CodeRelocs {
			c := &b.CodeRelocs[i]
			c.RVA = r.u32("code reloc RVA")
			c.Type = image.RelocType(r.u16("code reloc type"))
			c.Size = r.u8("code reloc size")
			c.Addend = int64(r.u64("code reloc addend"))
			c.File = r.u64("code reloc file value")
		}
	}
	p.Sequence = r.u32("sequence")
	p.Requires = r.u32("requires")
	p.Description = r.str("description")
	if n := r.count("functions", r.lim.MaxFunctions, minFunction); n > 0 {
		p.Functions = make([]Function, n)
		r.funcOffs = make([]int, n)
		for i := range p.Functions {
			r.funcOffs[i] = r.off
			r.function(&p.Functions[i])
		}
	}
	if n := r.count("constants", r.lim.MaxConstants, minConstant); n > 0 {
		p.Constants = make([]Constant, n)
		for i := range p.Constants {
			p.Constants[i].Name = r.str("constant name")
			p.Constants[i].Data = r.bytes("constant", r.lim.MaxConstant)
		}
	}
	return p
}

func (r *reader) function(f *Function) {
	f.Name = r.str("function name")
	f.New = r.flag("function new")
	f.OldRVA = r.u32("old RVA")
	f.OldSize = r.u32("old size")
	if pre := r.bytes("pre-image", r.lim.MaxPreImage); len(pre) > 0 {
		f.PreImage = pre
	}
	copy(f.OldHash[:], r.take(32, "old hash"))
	f.NewRVA = r.u32("new RVA")
	f.Entry = r.u32("entry")
	f.Blob = r.bytes("blob", r.lim.MaxBlob)
	if n := r.count("relocs", r.lim.MaxRelocs, minReloc); n > 0 {
		f.Relocs = make([]Reloc, n)
		for i := range f.Relocs {
			x := &f.Relocs[i]
			x.Offset = r.u32("reloc offset")
			x.Kind = RelocKind(r.u8("reloc kind"))
			x.Aux = r.u32("reloc aux")
			x.To = Target(r.u8("reloc target"))
			x.Index = r.u32("reloc index")
			x.Addend = int64(r.u64("reloc addend"))
		}
	}
}
