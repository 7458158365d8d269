package testenv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// Platform names what a program file was built for, in Go's terms
// (GOOS "windows" for PE, "linux" for ELF; GOARCH "amd64" or "arm64").
type Platform struct {
	GOOS, GOARCH string
}

// String returns "GOOS/GOARCH".
func (p Platform) String() string { return p.GOOS + "/" + p.GOARCH }

// ErrUnknownBinary is returned by DetectBinary for a file that is neither a
// 64-bit PE nor a 64-bit ELF for x86-64 or ARM64.
var ErrUnknownBinary = errors.New("testenv: not a PE or ELF program for amd64 or arm64")

// DetectBinary reads the headers of the program at path and says which
// platform it is built for, from the file's magic: "MZ" then the PE header's
// Machine (0x8664, 0xAA64), or "\x7fELF" then e_machine (62, 183).
func DetectBinary(path string) (Platform, error) {
	f, err := os.Open(path)
	if err != nil {
		return Platform{}, err
	}
	defer f.Close()
	var hdr [64]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil {
		return Platform{}, fmt.Errorf("%w: %s: %v", ErrUnknownBinary, path, err)
	}
	switch {
	case bytes.HasPrefix(hdr[:], []byte("\x7fELF")):
		// e_machine sits at offset 18 in both ELF classes; EI_DATA 1 is
		// little-endian, the only kind we build.
		if hdr[4] != 2 || hdr[5] != 1 {
			break
		}
		switch binary.LittleEndian.Uint16(hdr[18:]) {
		case 62:
			return Platform{"linux", "amd64"}, nil
		case 183:
			return Platform{"linux", "arm64"}, nil
		}
	case bytes.HasPrefix(hdr[:], []byte("MZ")):
		off := int64(binary.LittleEndian.Uint32(hdr[0x3c:]))
		var pe [6]byte
		if _, err := f.ReadAt(pe[:], off); err != nil || !bytes.HasPrefix(pe[:], []byte("PE\x00\x00")) {
			break
		}
		switch binary.LittleEndian.Uint16(pe[4:]) {
		case 0x8664:
			return Platform{"windows", "amd64"}, nil
		case 0xAA64:
			return Platform{"windows", "arm64"}, nil
		}
	}
	return Platform{}, fmt.Errorf("%w: %s", ErrUnknownBinary, path)
}

// Command returns an unstarted command that runs the program at path with
// args on this machine, whatever it was built for. What decides is the
// host, the platform of the kernel, not this test binary's own (they differ
// under qemu-user, where an arm64 test binary runs on an amd64 kernel):
//   - a program for the host runs directly;
//   - linux/arm64 ELF on a linux/amd64 host runs under qemu-aarch64-static;
//   - windows/amd64 PE on a linux/amd64 host runs under Wine, in the prefix
//     with the bcryptprimitives shim that Wine prepares.
//
// A needed tool that is missing skips the test (fails it under CI=true).
// A program this machine cannot run at all fails the test, except when the
// test binary runs under emulation, where it skips: the native leg of the
// matrix runs the same test.
func Command(ctx context.Context, t testing.TB, path string, args ...string) *exec.Cmd {
	t.Helper()
	target, err := DetectBinary(path)
	if err != nil {
		t.Fatalf("testenv.Command: %v", err)
	}
	self := Platform{runtime.GOOS, runtime.GOARCH}
	host := hostPlatform()

	// The program runs on the host's kernel, whatever this test binary
	// runs as: under qemu-user the host is still linux/amd64.
	var argv, env []string
	switch {
	case target == host:
		argv = []string{path}
	case target == (Platform{"linux", "arm64"}) && host == (Platform{"linux", "amd64"}):
		argv = []string{NeedTool(t, "qemu-aarch64-static", "qemu-aarch64"), path}
	case target == (Platform{"windows", "amd64"}) && host == (Platform{"linux", "amd64"}):
		env = Wine(t)
		argv = []string{NeedTool(t, "wine", "wine64"), path}
		detachWineServer(ctx, t, env, argv[0])
	default:
		if Emulated() {
			t.Skipf("testenv.Command: cannot run a %s program from a %s test binary under emulation; the native leg runs it", target, self)
		}
		t.Fatalf("testenv.Command: no way to run a %s program on %s (%s)", target, host, path)
	}
	cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], args...)...)
	cmd.Env = env // nil: inherit
	return cmd
}

var (
	hostOnce sync.Once
	host     Platform
)

// hostPlatform is the platform of the machine's kernel, which differs from
// the test binary's own under qemu-user: there runtime.GOARCH is arm64 but
// `uname -m`, an x86-64 program the kernel runs directly, says x86_64.
func hostPlatform() Platform {
	hostOnce.Do(func() {
		host = Platform{runtime.GOOS, runtime.GOARCH}
		if runtime.GOOS != "linux" || runtime.GOARCH == "amd64" {
			return
		}
		out, err := exec.Command("uname", "-m").Output()
		if err != nil {
			return
		}
		switch strings.TrimSpace(string(out)) {
		case "x86_64":
			host.GOARCH = "amd64"
		case "aarch64", "arm64":
			host.GOARCH = "arm64"
		}
	})
	return host
}

// detachWineServer makes sure the prefix's wineserver, and the Wine services
// it starts, run with their standard streams on /dev/null before a program
// whose output a test reads is started. Otherwise the first Wine program
// starts them, they inherit its stdout pipe, and exec.Cmd.Wait waits for
// EOF until the last Wine client of the prefix exits (measured: 23 s instead
// of 3 s while another test ran a Wine program; forever while a long test
// ran). `wineserver -p60` exits 0 when it started a server (which lingers
// 60 s after its last client) and 2 when one already runs (4 ms).
func detachWineServer(ctx context.Context, t testing.TB, env []string, wine string) {
	t.Helper()
	server, ok := LookTool("wineserver")
	if !ok {
		return // wine starts its own; the test still works, only slower to end
	}
	cmd := exec.CommandContext(ctx, server, "-p60")
	cmd.Env = env
	if cmd.Run() != nil {
		return // exit status 2: a server is already running with its services
	}
	boot := exec.CommandContext(ctx, wine, "cmd", "/c", "exit")
	boot.Env = env
	if err := boot.Run(); err != nil {
		t.Logf("testenv: starting the Wine services: %v", err)
	}
}
