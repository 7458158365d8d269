package pkg

import (
	"crypto/ed25519"
	"testing"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
)

// 100 functions of 200 bytes, signed.
func BenchmarkMarshal(b *testing.B) {
	_, priv := testKey(1)
	p := syntheticPackage(100, 200)
	if err := p.Sign(priv); err != nil {
		b.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSign(b *testing.B) {
	_, priv := testKey(1)
	p := syntheticPackage(100, 200)
	data, _ := p.Marshal()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := p.Sign(priv); err != nil {
			b.Fatal(err)
		}
	}
}

// Load includes the signature check.
func BenchmarkLoad(b *testing.B) {
	pub, priv := testKey(1)
	p := syntheticPackage(100, 200)
	if err := p.Sign(priv); err != nil {
		b.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	opts := LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(data, opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLink(b *testing.B) {
	p := syntheticPackage(100, 200)
	b.SetBytes(int64(p.Layout().Size))
	for b.Loop() {
		if _, err := p.Link(0x140000000, 0x140100000); err != nil {
			b.Fatal(err)
		}
	}
}

// Build from the Windows x64 fixture pair's report (the diff excluded).
func BenchmarkBuildFixture(b *testing.B) {
	old, err := image.Open(fixtures.Path(b, "c-v1-amd64.exe"))
	if err != nil {
		b.Fatal(err)
	}
	nw, err := image.Open(fixtures.Path(b, "c-v2-amd64.exe"))
	if err != nil {
		b.Fatal(err)
	}
	rep, err := diff.Compare(old, nw, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Build(old, nw, rep, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
