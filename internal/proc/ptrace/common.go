package ptrace

import "errors"

// ErrUnsupported is returned by Attach where this back-end does not exist
// (anything but linux/amd64 and linux/arm64).
var ErrUnsupported = errors.New("ptrace: not supported on this platform")

// ErrUnmapped is the cause of an AccessError for an address no mapping covers.
var ErrUnmapped = errors.New("ptrace: address not mapped")

// Options tunes Attach. The zero value is the default; there is nothing to
// tune yet, the type exists so that settings can be added without breaking callers.
type Options struct{}
