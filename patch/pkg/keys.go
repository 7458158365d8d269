package pkg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
)

// KeyID names a public key: the first 8 bytes of the SHA-256 of its 32 raw
// bytes. A signed package records the ID of the key that signed it.
type KeyID [8]byte

// String is the ID in lower-case hex.
func (id KeyID) String() string { return hex.EncodeToString(id[:]) }

// KeyIDOf returns the ID of pub.
func KeyIDOf(pub ed25519.PublicKey) KeyID {
	sum := sha256.Sum256(pub)
	var id KeyID
	copy(id[:], sum[:8])
	return id
}

// GenerateKey makes a new signing key pair from rand (crypto/rand.Reader
// when nil).
func GenerateKey(rand io.Reader) (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand)
}

// Text forms of keys: one line, a prefix, one space, the standard base64 of
// the raw 32-byte public key or the 32-byte private seed, and a newline.
const (
	textPublic  = "hotpatch-ed25519-public"
	textPrivate = "hotpatch-ed25519-seed"
)

// MarshalPublicKeyPEM encodes pub as a PEM "PUBLIC KEY" block (PKIX, as
// `openssl pkey -pubout` writes).
func MarshalPublicKeyPEM(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// MarshalPrivateKeyPEM encodes priv as a PEM "PRIVATE KEY" block (PKCS #8,
// as `openssl genpkey -algorithm ed25519` writes).
func MarshalPrivateKeyPEM(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKeyText encodes pub in the one-line text form
// "hotpatch-ed25519-public <base64>\n".
func MarshalPublicKeyText(pub ed25519.PublicKey) []byte {
	return []byte(textPublic + " " + base64.StdEncoding.EncodeToString(pub) + "\n")
}

// MarshalPrivateKeyText encodes priv in the one-line text form
// "hotpatch-ed25519-seed <base64 of the 32-byte seed>\n".
func MarshalPrivateKeyText(priv ed25519.PrivateKey) []byte {
	return []byte(textPrivate + " " + base64.StdEncoding.EncodeToString(priv.Seed()) + "\n")
}

// ParsePublicKey decodes a public key in either PEM or text form. Errors
// match ErrKey.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	raw, err := parseKey(data, "PUBLIC KEY", textPublic, func(der []byte) (any, error) { return x509.ParsePKIXPublicKey(der) })
	if err != nil {
		return nil, err
	}
	switch k := raw.(type) {
	case ed25519.PublicKey:
		return k, nil
	case []byte:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%w: public key of %d bytes", ErrKey, len(k))
		}
		return ed25519.PublicKey(k), nil
	}
	return nil, fmt.Errorf("%w: not an ed25519 public key (%T)", ErrKey, raw)
}

// ParsePrivateKey decodes a private key in either PEM or text form. Errors
// match ErrKey.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	raw, err := parseKey(data, "PRIVATE KEY", textPrivate, func(der []byte) (any, error) { return x509.ParsePKCS8PrivateKey(der) })
	if err != nil {
		return nil, err
	}
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		return k, nil
	case []byte:
		if len(k) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: seed of %d bytes", ErrKey, len(k))
		}
		return ed25519.NewKeyFromSeed(k), nil
	}
	return nil, fmt.Errorf("%w: not an ed25519 private key (%T)", ErrKey, raw)
}

// parseKey returns the parsed PEM key, or the raw bytes of the text form.
func parseKey(data []byte, pemType, prefix string, parse func([]byte) (any, error)) (any, error) {
	trimmed := bytes.TrimSpace(data)
	if bytes.HasPrefix(trimmed, []byte("-----BEGIN")) {
		block, rest := pem.Decode(trimmed)
		if block == nil || len(bytes.TrimSpace(rest)) != 0 {
			return nil, fmt.Errorf("%w: not exactly one PEM block", ErrKey)
		}
		if block.Type != pemType {
			return nil, fmt.Errorf("%w: PEM block %q, want %q", ErrKey, block.Type, pemType)
		}
		k, err := parse(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrKey, err)
		}
		return k, nil
	}
	s := string(trimmed)
	rest, ok := strings.CutPrefix(s, prefix+" ")
	if !ok || strings.ContainsAny(rest, " \t\r\n") {
		return nil, fmt.Errorf("%w: neither PEM nor %q text form", ErrKey, prefix)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return raw, nil
}
