// Package execmem allocates executable memory in the calling process, near or
// far from a given address, writes machine code into it without ever leaving a
// page writable and executable, flushes the instruction cache, and calls the
// code with the platform's C calling convention.
//
// It serves the in-process ("self") back-end and the tests that execute
// relocated code. Linux amd64 and arm64 are supported; elsewhere every
// function returns ErrUnsupported.
package execmem
