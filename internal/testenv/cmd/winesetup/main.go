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
	overlay := flag.Bool("overlay", false, "also write the go build overlay and print only its path (empty when the toolchain needs none)")
	quiet := flag.Bool("q", false, "print nothing on success")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: winesetup [-q] [-overlay]\n\n"+
			"Prepares the hotpatch Wine prefix (initialised once, bcryptprimitives shim\n"+
			"built and installed) and prints WINEPREFIX, WINEDEBUG and WINEDLLOVERRIDES\n"+
			"as shell assignments. Run from the module root.\n\n")
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
	env, err := testenv.PrepareWine(context.Background(), root, os.Stderr)
	if err != nil {
		fail(err)
	}
	switch {
	case *overlay:
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			fail(fmt.Errorf("go env GOROOT: %w", err))
		}
		dir, err := testenv.CacheRoot()
		if err != nil {
			fail(err)
		}
		path, err := testenv.WineGoOverlay(strings.TrimSpace(string(out)), dir)
		if err != nil {
			fail(err)
		}
		if path == "" {
			fmt.Fprintln(os.Stderr, "winesetup: this Go needs no RemoveAll overlay (or changed its source): building without one")
		}
		fmt.Println(path)
	case *quiet:
	default:
		// The last entries are the ones WineEnv set.
		for _, kv := range env[len(env)-3:] {
			fmt.Printf("export %q\n", kv)
		}
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "winesetup: %v\n", err)
	os.Exit(1)
}
