package image

import (
	"bytes"
	"fmt"
	"os"
)

// Open reads the file at path and parses it with Parse.
func Open(path string) (*Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	return Parse(data)
}

// Parse parses a PE or ELF module held in data. The format is chosen by the
// magic number ("MZ" for PE, "\x7fELF" for ELF); anything else is a
// *FormatError at offset 0.
//
// Parse accepts untrusted input: malformed data gives an error matching
// ErrMalformed (a *FormatError naming the offset), a well-formed module
// hotpatch does not handle gives one matching ErrUnsupported; it never panics.
//
// The returned Image refers to data (section bytes are sub-slices of it): the
// caller must not modify data while the Image is in use.
func Parse(data []byte) (*Image, error) {
	var (
		img *Image
		err error
	)
	switch {
	case bytes.HasPrefix(data, []byte("MZ")):
		img, err = parsePE(data)
	case bytes.HasPrefix(data, []byte("\x7fELF")):
		img, err = parseELF(data)
	default:
		return nil, &FormatError{Offset: 0, What: "magic number (neither PE \"MZ\" nor ELF \"\\x7fELF\")"}
	}
	if err != nil {
		return nil, err
	}
	if err := finish(img); err != nil {
		return nil, err
	}
	return img, nil
}
