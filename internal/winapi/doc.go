// Package winapi declares the Windows calls golang.org/x/sys/windows lacks
// (VirtualAllocEx, SuspendThread, Get/SetThreadContext, ...) and the CONTEXT
// records of AMD64 and ARM64, with their SDK layout checked by tests.
//
// Calls that a caller may make while other threads of its own process are
// suspended return a syscall.Errno instead of an error: they neither
// allocate nor resolve DLL exports lazily once Load has run.
package winapi
