package diff

import (
	"errors"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
)

// ErrMismatch is matched (errors.Is) by every error saying the two images
// cannot be compared: *ArchMismatchError and *FormatMismatchError.
var ErrMismatch = errors.New("diff: images are not two builds of one kind of module")

// ErrArchMismatch is matched by *ArchMismatchError.
var ErrArchMismatch = errors.New("diff: architecture mismatch")

// ErrFormatMismatch is matched by *FormatMismatchError.
var ErrFormatMismatch = errors.New("diff: container format mismatch")

// ErrNilImage is returned when Compare is given a nil image.
var ErrNilImage = errors.New("diff: nil image")

// ArchMismatchError reports two images for different instruction sets: their
// code cannot be compared.
type ArchMismatchError struct {
	Old, New image.Arch
}

// Error names both architectures.
func (e *ArchMismatchError) Error() string {
	return fmt.Sprintf("diff: architecture mismatch: old image is %v, new image is %v", e.Old, e.New)
}

// Is makes errors.Is(err, ErrArchMismatch) and errors.Is(err, ErrMismatch) true.
func (e *ArchMismatchError) Is(target error) bool {
	return target == ErrArchMismatch || target == ErrMismatch
}

// FormatMismatchError reports two images in different container formats (a PE
// and an ELF): they are not two builds of one module.
type FormatMismatchError struct {
	Old, New image.Format
}

// Error names both formats.
func (e *FormatMismatchError) Error() string {
	return fmt.Sprintf("diff: format mismatch: old image is %v, new image is %v", e.Old, e.New)
}

// Is makes errors.Is(err, ErrFormatMismatch) and errors.Is(err, ErrMismatch) true.
func (e *FormatMismatchError) Is(target error) bool {
	return target == ErrFormatMismatch || target == ErrMismatch
}
