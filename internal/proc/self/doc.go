// Package self is the Linux in-process back-end of proc.Process: the calling
// process, whose other threads cannot be stopped. It reads safely through
// process_vm_readv and writes code with stores that are atomic for a CPU
// executing it concurrently (CompareAndSwap), refusing nothing itself: the
// transaction decides, through verify, which writes are safe.
package self
