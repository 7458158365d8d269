package pkg

import (
	"bytes"
	"crypto/ed25519"
	"testing"
)

// FuzzLoad: Load never panics, every error is typed, and whatever Load
// accepts marshals back to exactly the bytes it was read from.
func FuzzLoad(f *testing.F) {
	pub, priv := testKey(1)
	p := samplePackage()
	unsigned, err := p.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(unsigned)
	if err := p.Sign(priv); err != nil {
		f.Fatal(err)
	}
	signed, err := p.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	small, err := syntheticPackage(2, 32).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	a64, err := arm64Package().Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(a64)
	f.Fuzz(func(t *testing.T, data []byte) {
		q, err := Load(data, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}, AllowUnsigned: true, Limits: Limits{MaxSize: 1 << 20}})
		if err != nil {
			if q != nil || !typed(err) {
				t.Fatalf("Load: %v (package %v)", err, q != nil)
			}
			return
		}
		out, err := q.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a loaded package: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("Marshal(Load(b)) != b:\n%x\n%x", data, out)
		}
		// Linking a valid package never panics either.
		_, _ = q.Link(0x140000000, 0x140100000)
	})
}

// FuzzAppliedRecord: ParseAppliedRecord never panics, errors are typed, and
// an accepted record marshals back to its bytes.
func FuzzAppliedRecord(f *testing.F) {
	b, err := sampleRecord().MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseAppliedRecord(data)
		if err != nil {
			if !typed(err) {
				t.Fatalf("untyped: %v", err)
			}
			return
		}
		out, err := a.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := AppliedRecordLen(data)
		if !bytes.Equal(out, data[:n]) {
			t.Fatal("round trip differs")
		}
	})
}
