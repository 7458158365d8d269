//go:build !unix

package testenv

// lockFile is a no-op where there is no flock: only the Linux host prepares
// Wine prefixes and fixture caches shared between test processes; a test
// binary running on Windows never calls it for shared state.
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
