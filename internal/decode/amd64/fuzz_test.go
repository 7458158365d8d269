package amd64

import (
	"errors"
	"testing"
)

// FuzzDecode: any input decodes to a whole instruction or a typed error; the
// length is within bounds, the PC-relative field lies inside the
// instruction, the target is its end plus the field, and decoding exactly
// the instruction's own bytes gives the same result (an instruction never
// depends on the bytes after it: the VZEROUPPER trap).
func FuzzDecode(f *testing.F) {
	for _, s := range [][]byte{
		{0xc5, 0xf8, 0x77, 0x48, 0x89, 0xe5},
		{0xc5, 0xfe, 0x6f, 0x05, 0x01, 0x00, 0x00, 0x00},
		{0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x05, 0x01, 0x00, 0x00, 0x00},
		{0xf3, 0x0f, 0x1e, 0xfa},
		{0x66, 0x4c, 0x0f, 0x38, 0xf6, 0xeb},
		{0x67, 0x8b, 0x05, 0x01, 0x00, 0x00, 0x00},
		{0x48, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff},
		{0xe8, 0x00},
		{0x0f, 0x1e, 0x05, 0x10, 0x00, 0x00, 0x00},
	} {
		f.Add(s, uint64(0x401000))
	}
	f.Fuzz(func(t *testing.T, code []byte, pc uint64) {
		in, err := Decode(code, pc)
		if err != nil {
			if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrInvalid) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if in.Len < 1 || in.Len > 15 || in.Len > len(code) {
			t.Fatalf("% x: length %d", code, in.Len)
		}
		if in.RelKind != RelNone {
			if in.RelOff < 1 || in.RelOff+in.RelKind.Size() > in.Len {
				t.Fatalf("% x: %v field at %d of %d bytes", code, in.RelKind, in.RelOff, in.Len)
			}
			want := in.End() + uint64(in.Rel(code))
			if in.RelKind == EIPDisp32 {
				want = uint64(uint32(want))
			}
			if in.Target != want {
				t.Fatalf("% x: target %#x, want %#x", code, in.Target, want)
			}
		}
		own, err := Decode(code[:in.Len], pc)
		if err != nil || own.Len != in.Len || own.RelKind != in.RelKind || own.Target != in.Target || own.Op != in.Op {
			t.Fatalf("% x: decodes as %v (%d bytes) with what follows, as %v (%d bytes, %v) alone", code, in, in.Len, own, own.Len, err)
		}
	})
}
