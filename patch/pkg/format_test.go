package pkg

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRoundTripIsIdentity(t *testing.T) {
	pub, priv := testKey(1)
	for _, signed := range []bool{false, true} {
		p := samplePackage()
		if signed {
			require.NoError(t, p.Sign(priv))
		}
		b1, err := p.Marshal()
		require.NoError(t, err)
		q, err := Load(b1, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}, AllowUnsigned: !signed})
		require.NoError(t, err)
		require.Equal(t, signed, q.Signed())
		b2, err := q.Marshal()
		require.NoError(t, err)
		require.Equal(t, b1, b2, "marshal(load(b)) == b")
		// The decoded package equals the original field by field.
		q.sig, p.sig = nil, nil
		require.Equal(t, p, q)
	}
}

func TestDeterministic(t *testing.T) {
	_, priv := testKey(1)
	var prev []byte
	for range 3 {
		p := samplePackage()
		require.NoError(t, p.Sign(priv))
		b, err := p.Marshal()
		require.NoError(t, err)
		if prev != nil {
			require.Equal(t, prev, b)
		}
		prev = b
	}
	// The PDB path is not part of the identity: it does not change the bytes.
	p := samplePackage()
	p.Base.Identity.CodeView.Path = `C:\build\app.pdb`
	require.NoError(t, p.Sign(priv))
	b, err := p.Marshal()
	require.NoError(t, err)
	require.Equal(t, prev, b)
}

func TestSignatureChecks(t *testing.T) {
	pub, priv := testKey(1)
	other, otherPriv := testKey(2)
	p := samplePackage()
	require.NoError(t, p.Sign(priv))
	signed, err := p.Marshal()
	require.NoError(t, err)
	p.Unsign()
	unsigned, err := p.Marshal()
	require.NoError(t, err)
	q := samplePackage()
	require.NoError(t, q.Sign(otherPriv))
	byOther, err := q.Marshal()
	require.NoError(t, err)

	// A package signed by one key but carrying another trusted key's ID.
	forged := append([]byte(nil), byOther...)
	id := KeyIDOf(pub)
	copy(forged[offKeyID:], id[:])

	tests := []struct {
		name   string
		data   []byte
		opts   LoadOptions
		want   error
		sigErr string
	}{
		{"trusted", signed, LoadOptions{TrustedKeys: []ed25519.PublicKey{other, pub}}, nil, ""},
		{"no keys", signed, LoadOptions{}, ErrSignature, "unknown key"},
		{"no keys, unsigned allowed", signed, LoadOptions{AllowUnsigned: true}, ErrSignature, "unknown key"},
		{"wrong key", signed, LoadOptions{TrustedKeys: []ed25519.PublicKey{other}}, ErrSignature, "unknown key"},
		{"forged key ID", forged, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}}, ErrSignature, "bad signature"},
		{"unsigned refused", unsigned, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}}, ErrUnsigned, ""},
		{"unsigned allowed", unsigned, LoadOptions{AllowUnsigned: true}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Load(tt.data, tt.opts)
			if tt.want == nil {
				require.NoError(t, err)
				require.Equal(t, "parse", got.Functions[0].Name)
				return
			}
			require.ErrorIs(t, err, tt.want)
			require.Nil(t, got)
			if tt.sigErr != "" {
				var se *SignatureError
				require.ErrorAs(t, err, &se)
				require.Contains(t, se.Why, tt.sigErr)
				require.Equal(t, KeyIDOf(pub), se.KeyID)
			}
		})
	}
}

// Every single bit flipped anywhere in a signed package must be refused,
// and with a typed error.
func TestEveryBitFlipRefused(t *testing.T) {
	pub, priv := testKey(1)
	p := samplePackage()
	require.NoError(t, p.Sign(priv))
	data, err := p.Marshal()
	require.NoError(t, err)
	opts := LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}}
	_, err = Load(data, opts)
	require.NoError(t, err)
	flipped := 0
	for i := range data {
		for bit := range 8 {
			bad := append([]byte(nil), data...)
			bad[i] ^= 1 << bit
			q, err := Load(bad, opts)
			require.Error(t, err, "byte %d bit %d", i, bit)
			require.Nil(t, q)
			require.True(t, typed(err), "byte %d bit %d: untyped %v", i, bit, err)
			if i >= headerSize {
				// Past the header, only the signature can notice.
				require.ErrorIs(t, err, ErrSignature, "byte %d bit %d", i, bit)
			}
			flipped++
		}
	}
	require.Equal(t, 8*len(data), flipped)
	t.Logf("%d single-bit flips of a %d-byte package refused", flipped, len(data))
}

func TestTruncationRefused(t *testing.T) {
	pub, priv := testKey(1)
	for _, signed := range []bool{false, true} {
		p := samplePackage()
		if signed {
			require.NoError(t, p.Sign(priv))
		}
		data, err := p.Marshal()
		require.NoError(t, err)
		for n := range len(data) {
			_, err := Load(data[:n], LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}, AllowUnsigned: true})
			require.ErrorIs(t, err, ErrMalformed, "signed=%v length %d", signed, n)
		}
		_, err = Load(append(data, 0), LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}, AllowUnsigned: true})
		require.ErrorIs(t, err, ErrMalformed)
	}
}

func TestHeaderErrors(t *testing.T) {
	p := samplePackage()
	data, err := p.Marshal()
	require.NoError(t, err)
	mod := func(f func(b []byte)) []byte {
		b := append([]byte(nil), data...)
		f(b)
		return b
	}
	opts := LoadOptions{AllowUnsigned: true}
	_, err = Load(mod(func(b []byte) { binary.LittleEndian.PutUint16(b[offVersion:], 2) }), opts)
	var ve *VersionError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, uint16(2), ve.Got)
	require.ErrorIs(t, err, ErrVersion)

	var fe *FormatError
	_, err = Load(mod(func(b []byte) { b[3] = 'X' }), opts)
	require.ErrorAs(t, err, &fe)
	require.Equal(t, int64(0), fe.Offset)
	_, err = Load(mod(func(b []byte) { b[offFlags] = 4 }), opts)
	require.ErrorAs(t, err, &fe)
	require.Equal(t, int64(offFlags), fe.Offset)
	_, err = Load(mod(func(b []byte) { b[offKeyID] = 1 }), opts)
	require.ErrorAs(t, err, &fe)
	require.Equal(t, int64(offKeyID), fe.Offset)
	// Claiming a signature that is not there.
	_, err = Load(mod(func(b []byte) { b[offFlags] = flagSigned }), opts)
	require.ErrorAs(t, err, &fe)
	require.Equal(t, int64(offBodyLen), fe.Offset)
}

func TestLimits(t *testing.T) {
	p := syntheticPackage(100, 200)
	data, err := p.Marshal()
	require.NoError(t, err)
	opts := func(l Limits) LoadOptions { return LoadOptions{AllowUnsigned: true, Limits: l} }
	tests := []struct {
		name string
		lim  Limits
		what string
	}{
		{"total", Limits{MaxSize: int64(len(data) - 1)}, "total size"},
		{"functions", Limits{MaxFunctions: 99}, "functions"},
		{"blob", Limits{MaxBlob: 199}, "blob"},
		{"relocs", Limits{MaxRelocs: 2}, "relocs"},
		{"constant", Limits{MaxConstant: 12}, "constant"},
		{"string", Limits{MaxString: 10}, "description"},
		{"pre-image", Limits{MaxPreImage: 15}, "pre-image"},
		{"code relocs", Limits{MaxCodeRelocs: 0x7fffffff}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(data, opts(tt.lim))
			if tt.what == "" {
				require.NoError(t, err)
				return
			}
			var le *LimitError
			require.ErrorAs(t, err, &le)
			require.ErrorIs(t, err, ErrTooLarge)
			require.Equal(t, tt.what, le.What)
		})
	}
	// A count that claims more elements than bytes are left allocates nothing
	// and is a FormatError.
	q, err := Load(data, opts(Limits{}))
	require.NoError(t, err)
	q.Functions = nil
	q.Constants = nil
	small, err := q.Marshal()
	require.NoError(t, err)
	// The body ends with two zero counts (functions, constants): make the
	// first one huge.
	binary.LittleEndian.PutUint32(small[len(small)-8:], 60000)
	_, err = Load(small, opts(Limits{}))
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.What, "exceeds the bytes left")
	binary.LittleEndian.PutUint32(small[len(small)-8:], 1<<20)
	_, err = Load(small, opts(Limits{}))
	require.ErrorIs(t, err, ErrTooLarge)
}

func TestMarshalRefusesChangesAfterSign(t *testing.T) {
	pub, priv := testKey(1)
	p := samplePackage()
	require.NoError(t, p.Sign(priv))
	p.Functions[0].Blob[0] = 0x90
	_, err := p.Marshal()
	var se *SignatureError
	require.ErrorAs(t, err, &se)
	require.Equal(t, KeyIDOf(pub), se.KeyID)
	require.NoError(t, p.Sign(priv))
	_, err = p.Marshal()
	require.NoError(t, err)
	require.Error(t, p.Sign(priv[:10]))
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *Package)
		want string
	}{
		{"ok", func(p *Package) {}, ""},
		{"format", func(p *Package) { p.Base.Format = 0 }, "format"},
		{"arch", func(p *Package) { p.Base.Arch = 7 }, "arch"},
		{"sequence 0", func(p *Package) { p.Sequence, p.Requires = 0, 0 }, "sequence"},
		{"requires itself", func(p *Package) { p.Requires = p.Sequence }, "sequence"},
		{"bad utf8", func(p *Package) { p.Description = "\xff" }, "UTF-8"},
		{"sections overlap", func(p *Package) {
			p.Base.CodeSections = append(p.Base.CodeSections, p.Base.CodeSections[0])
		}, "code section 1"},
		{"code reloc outside", func(p *Package) { p.Base.CodeRelocs[0].RVA = 0x8000 }, "outside the code sections"},
		{"code reloc size", func(p *Package) { p.Base.CodeRelocs[0].Size = 2 }, "of 2 bytes"},
		{"unsorted functions", func(p *Package) { p.Functions[0], p.Functions[1] = p.Functions[1], p.Functions[0] }, "unsorted"},
		{"overlapping functions", func(p *Package) { p.Functions[1].OldRVA = p.Functions[0].OldRVA + 1 }, "overlapping"},
		{"duplicate name", func(p *Package) { p.Functions[1].Name = "parse" }, "twice"},
		{"empty name", func(p *Package) { p.Functions[1].Name = "" }, "name empty"},
		{"new before old", func(p *Package) { p.Functions[1], p.Functions[2] = p.Functions[2], p.Functions[1] }, "after a new"},
		{"new with old fields", func(p *Package) { p.Functions[2].OldSize = 1 }, "old-image fields"},
		{"pre-image too long", func(p *Package) { p.Functions[1].PreImage = make([]byte, 7) }, "pre-image of 7"},
		{"no pre-image", func(p *Package) { p.Functions[1].PreImage = nil }, "pre-image of 0"},
		{"outside image", func(p *Package) { p.Functions[1].OldRVA = p.Base.Size - 1 }, "outside the image"},
		{"entry outside", func(p *Package) { p.Functions[1].Entry = 5 }, "entry"},
		{"reloc kind arch", func(p *Package) { p.Functions[1].Relocs[0].Kind = RelocBranch26 }, "not valid for amd64"},
		{"reloc field outside", func(p *Package) { p.Functions[1].Relocs[0].Offset = 2 }, "outside the blob"},
		{"reloc aux", func(p *Package) { p.Functions[1].Relocs[0].Aux = 4 }, "instruction end"},
		{"reloc overlap", func(p *Package) { p.Functions[0].Relocs[1].Offset = 4; p.Functions[0].Relocs[1].Aux = 8 }, "overlapping"},
		{"reloc blob index", func(p *Package) { p.Functions[0].Relocs[1].Index = 3 }, "blob target"},
		{"reloc blob offset", func(p *Package) { p.Functions[0].Relocs[1].Addend = 7 }, "blob target"},
		{"reloc constant", func(p *Package) { p.Functions[0].Relocs[0].Index = 1 }, "constant target"},
		{"reloc image", func(p *Package) { p.Functions[1].Relocs[0].Addend = -1 }, "image target"},
		{"reloc target kind", func(p *Package) { p.Functions[1].Relocs[0].To = 9 }, "target kind"},
		{"abs64 aux", func(p *Package) { p.Functions[0].Relocs[2].Aux = 1 }, "aux set"},
		{"empty constant", func(p *Package) { p.Constants[0].Data = nil; p.Functions[0].Relocs[0].Addend = 0 }, "constant 0 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := samplePackage()
			tt.mod(p)
			err := p.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrMalformed)
			require.Contains(t, err.Error(), tt.want)
			_, err = p.Marshal()
			require.Error(t, err, "Marshal validates")
			_, priv := testKey(1)
			require.Error(t, p.Sign(priv), "Sign validates")
		})
	}
}

// A body that breaks a Validate rule is refused by Load with the offset of
// the offending function.
func TestLoadValidates(t *testing.T) {
	p := samplePackage()
	// Write an invalid package by encoding without Marshal's check.
	p.Functions[1].Relocs[0].Addend = int64(p.Base.Size) + 1
	data := p.encode(nil)
	_, err := Load(data, LoadOptions{AllowUnsigned: true})
	var fe *FormatError
	require.ErrorAs(t, err, &fe)
	require.Contains(t, fe.What, `function 1 ("zero")`)
	require.Greater(t, fe.Offset, int64(headerSize))
	require.True(t, errors.Is(err, ErrMalformed))
}
