// Command winesetup prepares what the windows leg of `make test` needs,
// through the same internal/testenv code that tests use: the Wine prefix
// with the bcryptprimitives shim (testenv.PrepareWine) and the go build
// overlay that makes os.RemoveAll work under Wine 8 (testenv.WineGoOverlay).
//
// Run it from the module root: go run ./internal/testenv/cmd/winesetup
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

func main() {
	quiet := flag.Bool("q", false, "print nothing on success")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: winesetup [-q]\n\n"+
			"Prepares the hotpatch Wine prefix (initialised once, bcryptprimitives shim\n"+
			"built and installed) and the go build overlay for the windows leg, then\n"+
			"prints them as shell assignments for eval:\n\n"+
			"  HOTPATCH_WINEPREFIX='...'   the prefix (scripts/wine-exec uses it)\n"+
			"  HOTPATCH_WINE_OVERLAY='...' the -overlay file, empty when this Go needs none\n\n"+
			"Run it from the module root.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if _, err := os.Stat("go.mod"); err != nil {
		fail(errors.New("run from the module root (no go.mod here)"))
	}
	root, err := os.Getwd()
	if err != nil {
		fail(err)
	}
	if _, err := testenv.PrepareWine(context.Background(), root, os.Stderr); err != nil {
		fail(err)
	}
	prefix, err := testenv.WinePrefixDir()
	if err != nil {
		fail(err)
	}
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		fail(fmt.Errorf("go env GOROOT: %w", err))
	}
	dir, err := testenv.CacheRoot()
	if err != nil {
		fail(err)
	}
	overlay, err := testenv.WineGoOverlay(strings.TrimSpace(string(out)), dir)
	if err != nil {
		fail(err)
	}
	if overlay == "" {
		fmt.Fprintln(os.Stderr, "winesetup: this Go's source has no deleteat fallback line to extend: building without the RemoveAll overlay")
	}
	if *quiet {
		return
	}
	fmt.Printf("HOTPATCH_WINEPREFIX=%s\nHOTPATCH_WINE_OVERLAY=%s\n", shellQuote(prefix), shellQuote(overlay))
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "winesetup: %v\n", err)
	os.Exit(1)
}
