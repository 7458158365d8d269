//go:build windows && !amd64

package winapi

func directCall6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr {
	panic("winapi: direct calls are implemented for amd64 only")
}

const directSupported = false
