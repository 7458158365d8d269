package pkg

import (
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
)

func sampleRecord() *AppliedRecord {
	return &AppliedRecord{
		ModuleBase: 0x7ff600000000, CodeHash: sha256.Sum256([]byte("code")), Sequence: 2, Requires: 1,
		Package: sha256.Sum256([]byte("pkg")), KeyID: KeyID{1, 2, 3, 4, 5, 6, 7, 8},
		Region: 0x7ff5f0000000, RegionSize: 0x2000,
		Functions: []AppliedFunction{
			{OldRVA: 0x1100, Entry: 0x7ff5f0001000, Original: []byte{0x55, 0x48, 0x89, 0xe5, 0x8b}},
			{OldRVA: 0x1200, Entry: 0x7ff5f0001040, Original: []byte{0x31, 0xc0, 0xc3, 0x90, 0x90}},
		},
	}
}

func TestAppliedRecordRoundTrip(t *testing.T) {
	a := sampleRecord()
	b, err := a.MarshalBinary()
	require.NoError(t, err)
	n, err := AppliedRecordLen(b[:AppliedHeaderSize])
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	// Followed by the rest of the page: still parses.
	got, err := ParseAppliedRecord(append(append([]byte(nil), b...), make([]byte, 100)...))
	require.NoError(t, err)
	require.Equal(t, a, got)
	again, err := got.MarshalBinary()
	require.NoError(t, err)
	require.Equal(t, b, again)
}

func TestAppliedRecordCorrupt(t *testing.T) {
	b, err := sampleRecord().MarshalBinary()
	require.NoError(t, err)
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x20
		_, err := ParseAppliedRecord(bad)
		require.Error(t, err, "byte %d", i)
		require.True(t, typed(err), "byte %d: %v", i, err)
	}
	for n := range len(b) {
		_, err := ParseAppliedRecord(b[:n])
		require.ErrorIs(t, err, ErrMalformed, "length %d", n)
	}
	a := sampleRecord()
	a.Functions[1].OldRVA = 0x1000
	_, err = a.MarshalBinary()
	require.ErrorIs(t, err, ErrMalformed)
	a = sampleRecord()
	a.Functions[0].Original = make([]byte, 65)
	_, err = a.MarshalBinary()
	require.ErrorIs(t, err, ErrMalformed)
}
