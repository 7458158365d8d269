// Package verify holds every check that decides "may we touch this process
// now": pre-image bytes, thread activeness (PCs and, in strict mode, return
// addresses on stacks), post-write readback and page protections.
//
// The checks are pure functions over small inputs (bytes, thread states,
// address ranges) returning typed errors that carry the address and symbol.
// The patch transaction calls them for every decision; verify never calls
// back into patch or into a process.
package verify
