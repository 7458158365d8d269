// Package proc is the seam between the patch transaction and an operating
// system: one small Process interface (read, write, protect, allocate near,
// stop and resume threads, thread registers, icache flush, modules) with a
// back-end per OS — the calling process, Linux ptrace, Windows remote.
//
// The transaction logic is written once against Process and tested against
// every back-end; a fake back-end in tests injects failures.
package proc
