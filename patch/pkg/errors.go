package pkg

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels matched (errors.Is) by the typed errors of this package.
var (
	// ErrMalformed is matched by every *FormatError.
	ErrMalformed = errors.New("pkg: malformed package")
	// ErrSignature is matched by every *SignatureError: a bad signature, a
	// key that is not trusted, or a package changed after Sign.
	ErrSignature = errors.New("pkg: signature not valid")
	// ErrUnsigned is returned by Load for an unsigned package unless
	// LoadOptions.AllowUnsigned is set.
	ErrUnsigned = errors.New("pkg: package is not signed")
	// ErrTooLarge is matched by every *LimitError.
	ErrTooLarge = errors.New("pkg: package exceeds a limit")
	// ErrVersion is matched by every *VersionError.
	ErrVersion = errors.New("pkg: unsupported format version")
	// ErrRefused is matched by every *RefusedError from Build.
	ErrRefused = errors.New("pkg: functions cannot be hot-patched")
	// ErrLink is matched by every *LinkError.
	ErrLink = errors.New("pkg: relocation cannot be linked")
	// ErrKey is returned for a key that cannot be decoded.
	ErrKey = errors.New("pkg: malformed key")
)

// FormatError reports malformed, truncated or non-canonical input at a byte
// offset of the package (or of an applied record).
type FormatError struct {
	Offset int64  // offset of the offending field
	What   string // the field being read, e.g. "function 3 reloc 2 kind"
}

// Error implements error: the message names what FormatError carries.
func (e *FormatError) Error() string {
	return fmt.Sprintf("pkg: malformed package at offset %d: %s", e.Offset, e.What)
}

// Is makes errors.Is(err, ErrMalformed) true.
func (e *FormatError) Is(target error) bool { return target == ErrMalformed }

// SignatureError reports a signature that does not verify.
type SignatureError struct {
	KeyID KeyID  // the key ID the package names
	Why   string // "unknown key", "bad signature", "package changed after Sign"
}

// Error implements error: the message names what SignatureError carries.
func (e *SignatureError) Error() string {
	return fmt.Sprintf("pkg: signature by key %s: %s", e.KeyID, e.Why)
}

// Is makes errors.Is(err, ErrSignature) true.
func (e *SignatureError) Is(target error) bool { return target == ErrSignature }

// LimitError reports input beyond one of the Limits.
type LimitError struct {
	What   string // "total size", "functions", "blob", "constant", ...
	Limit  int64
	Got    int64
	Offset int64 // where the count or length was read, -1 for the total size
}

// Error implements error: the message names what LimitError carries.
func (e *LimitError) Error() string {
	return fmt.Sprintf("pkg: %s %d exceeds the limit %d (offset %d)", e.What, e.Got, e.Limit, e.Offset)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *LimitError) Is(target error) bool { return target == ErrTooLarge }

// VersionError reports a package written in a format version Load does not read.
type VersionError struct {
	Got uint16
}

// Error implements error: the message names what VersionError carries.
func (e *VersionError) Error() string {
	return fmt.Sprintf("pkg: format version %d, this build reads version %d", e.Got, Version)
}

// Is makes errors.Is(err, ErrVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrVersion }

// Refusal is one function Build cannot carry, and why.
type Refusal struct {
	Function string
	RVA      uint32 // in the new image
	// Offset is the body offset of the offending instruction, -1 when the
	// whole function is refused.
	Offset int
	Why    string
}

// String renders the Refusal on one line: the function and why.
func (r Refusal) String() string {
	if r.Offset >= 0 {
		return fmt.Sprintf("%s (%#x) +%#x: %s", r.Function, r.RVA, r.Offset, r.Why)
	}
	return fmt.Sprintf("%s (%#x): %s", r.Function, r.RVA, r.Why)
}

// RefusedError lists every function Build could not carry, each with every
// reason.
type RefusedError struct {
	Refused []Refusal
}

// Error implements error: the message names what RefusedError carries.
func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pkg: %d reasons functions cannot be hot-patched:", len(e.Refused))
	for _, r := range e.Refused {
		b.WriteString("\n\t")
		b.WriteString(r.String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Functions returns the names of the refused functions, once each, in order.
func (e *RefusedError) Functions() []string {
	var out []string
	seen := map[string]bool{}
	for _, r := range e.Refused {
		if !seen[r.Function] {
			seen[r.Function] = true
			out = append(out, r.Function)
		}
	}
	return out
}

// LinkError reports a relocation Link cannot resolve: a target out of the
// field's reach, a misaligned ARM64 target, an instruction of the wrong kind.
type LinkError struct {
	Function string
	Offset   uint32 // of the field in the blob
	Kind     RelocKind
	Target   uint64 // the address S
	Why      string
}

// Error implements error: the message names what LinkError carries.
func (e *LinkError) Error() string {
	return fmt.Sprintf("pkg: link %s+%#x (%s to %#x): %s", e.Function, e.Offset, e.Kind, e.Target, e.Why)
}

// Is makes errors.Is(err, ErrLink) true.
func (e *LinkError) Is(target error) bool { return target == ErrLink }
