package winapi

// directCall6 is implemented in direct_windows_amd64.s.
func directCall6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr

const directSupported = true
