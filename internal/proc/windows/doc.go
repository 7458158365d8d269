// Package winproc is the Windows back-end of proc.Process: another process
// through OpenProcess, Read/WriteProcessMemory and SuspendThread (Open), and
// the calling process itself with every other thread suspended (Self).
//
// Between Stop and Resume a suspended thread may hold the process heap lock,
// the loader lock or a Go runtime lock. Stop and Resume therefore allocate
// nothing, resolve no DLL export and take no lock in that window: snapshot
// buffers, thread handles and CONTEXT records are sized before the first
// thread is suspended. For Self the caller's code in the window must obey
// the same rules (see Self).
package winproc
