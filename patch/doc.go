// Package patch redirects functions of a running process, atomically and
// reversibly: a Target wraps a process (the caller's own, a Linux process
// through ptrace, a Windows process), a transaction collects redirections
// and detours, Commit applies them all or none, and Rollback restores every
// byte. Every decision (pre-image, thread activeness, readback, protections,
// atomicity of in-process writes) is taken by package verify.
//
// The diff of two builds lives in patch/diff.
package patch
