package image

import (
	"errors"
	"fmt"
)

// ErrMalformed is matched (errors.Is) by every *FormatError.
var ErrMalformed = errors.New("malformed image")

// ErrUnsupported is returned for well-formed images hotpatch does not handle
// (another machine type, a 32-bit image, an object file).
var ErrUnsupported = errors.New("unsupported image")

// FormatError reports malformed or truncated input at a file offset.
type FormatError struct {
	Offset int64  // file offset of the offending structure, -1 when unknown
	What   string // the structure being read, e.g. "pdata entry 12"
	Err    error  // underlying cause, may be nil
}

// Error names the structure and the file offset.
func (e *FormatError) Error() string {
	msg := fmt.Sprintf("image: malformed %s at offset %#x", e.What, e.Offset)
	if e.Offset < 0 {
		msg = fmt.Sprintf("image: malformed %s", e.What)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is makes errors.Is(err, ErrMalformed) true for every FormatError.
func (e *FormatError) Is(target error) bool { return target == ErrMalformed }

// Unwrap returns the underlying cause, nil when there is none.
func (e *FormatError) Unwrap() error { return e.Err }

// UnsupportedError reports an image that is well formed but outside what
// hotpatch handles.
type UnsupportedError struct {
	What string // e.g. "PE machine 0x14c (i386)"
}

// Error says what hotpatch does not handle.
func (e *UnsupportedError) Error() string { return "image: unsupported " + e.What }

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

// ErrIdentityMismatch is matched by every *IdentityMismatchError.
var ErrIdentityMismatch = errors.New("image identity mismatch")

// IdentityMismatchError reports that a live module is not the image a patch
// was built for. Field names the first identity component that differs.
type IdentityMismatchError struct {
	Field string // "Header" (not a PE/ELF header), "Machine", "TimeDateStamp", "CheckSum", "SizeOfImage", "CodeView", "BuildID", "CodeHash"
	Want  string
	Got   string
	// RVA is where the first differing code byte is, for Field "CodeHash"; 0 otherwise.
	RVA uint32
}

// Error names the differing field with both values.
func (e *IdentityMismatchError) Error() string {
	s := fmt.Sprintf("image: identity mismatch in %s: want %s, got %s", e.Field, e.Want, e.Got)
	if e.RVA != 0 {
		s += fmt.Sprintf(" (first difference at RVA %#x)", e.RVA)
	}
	return s
}

// Is makes errors.Is(err, ErrIdentityMismatch) true.
func (e *IdentityMismatchError) Is(target error) bool { return target == ErrIdentityMismatch }
