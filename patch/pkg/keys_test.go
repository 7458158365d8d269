package pkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

func TestKeysRoundTrip(t *testing.T) {
	pub, priv, err := GenerateKey(rand.Reader)
	require.NoError(t, err)
	pemPub, err := MarshalPublicKeyPEM(pub)
	require.NoError(t, err)
	pemPriv, err := MarshalPrivateKeyPEM(priv)
	require.NoError(t, err)
	for _, enc := range [][]byte{pemPub, MarshalPublicKeyText(pub)} {
		got, err := ParsePublicKey(enc)
		require.NoError(t, err)
		require.True(t, pub.Equal(got))
	}
	for _, enc := range [][]byte{pemPriv, MarshalPrivateKeyText(priv)} {
		got, err := ParsePrivateKey(enc)
		require.NoError(t, err)
		require.True(t, priv.Equal(got))
	}
	require.True(t, bytes.HasPrefix(MarshalPublicKeyText(pub), []byte("hotpatch-ed25519-public ")))
	require.Equal(t, KeyIDOf(pub), KeyIDOf(priv.Public().(ed25519.PublicKey)))
	require.Len(t, KeyIDOf(pub).String(), 16)
}

func TestKeysMalformed(t *testing.T) {
	pub, priv := testKey(3)
	pemPriv, err := MarshalPrivateKeyPEM(priv)
	require.NoError(t, err)
	pemPub, err := MarshalPublicKeyPEM(pub)
	require.NoError(t, err)
	for _, bad := range [][]byte{
		nil,
		[]byte("hotpatch-ed25519-public"),
		[]byte("hotpatch-ed25519-public AAAA"),
		[]byte("hotpatch-ed25519-public !!!"),
		[]byte("hotpatch-ed25519-seed " + "AAAA"),
		pemPriv, // a private key where a public one is expected
		append(append([]byte(nil), pemPub...), pemPub...),
		[]byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
	} {
		_, err := ParsePublicKey(bad)
		require.ErrorIs(t, err, ErrKey, "%q", bad)
	}
	for _, bad := range [][]byte{nil, pemPub, MarshalPublicKeyText(pub), []byte("hotpatch-ed25519-seed AAAA")} {
		_, err := ParsePrivateKey(bad)
		require.ErrorIs(t, err, ErrKey, "%q", bad)
	}
}

// The PEM files interoperate with openssl, the operator's usual tool.
func TestKeysOpenSSL(t *testing.T) {
	openssl := testenv.NeedHostTool(t, "openssl")
	dir := t.TempDir()
	privPath := filepath.Join(dir, "k.pem")
	out, err := exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", privPath).CombinedOutput()
	require.NoError(t, err, "%s", out)
	pubPEM, err := exec.Command(openssl, "pkey", "-in", privPath, "-pubout").Output()
	require.NoError(t, err)
	privPEM, err := exec.Command("cat", privPath).Output()
	require.NoError(t, err)
	priv, err := ParsePrivateKey(privPEM)
	require.NoError(t, err)
	pub, err := ParsePublicKey(pubPEM)
	require.NoError(t, err)
	require.True(t, pub.Equal(priv.Public()))
}
