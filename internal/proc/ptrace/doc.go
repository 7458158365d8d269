// Package ptrace is the Linux remote back-end of proc.Process: it seizes
// every thread of another process with ptrace, reads and writes its memory
// through /proc/PID/mem, and runs mmap/mprotect/munmap inside it by syscall injection.
//
// All ptrace requests come from one locked OS thread (the kernel only
// accepts them from the thread that attached). Threads created while the
// target is being stopped are attached automatically (PTRACE_O_TRACECLONE)
// and stopped too. Registers changed to inject a syscall are restored
// exactly before anything else happens, on every path.
//
// Supported: linux/amd64 (tested natively) and linux/arm64 (compiled and
// vetted only: qemu-user cannot ptrace). Elsewhere Attach returns
// ErrUnsupported.
package ptrace
