// Command inspect prints what hotpatch's image package sees in an executable
// (PE or ELF, x86-64 or ARM64): identity, sections and functions. It is the
// placeholder for `make demo` until examples/hotpatch and the live-patch demo
// land; run it on any module:
//
//	go run ./examples/inspect [-n 12] FILE...
package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

func main() {
	n := flag.Int("n", 12, "how many functions to list per file (0: all)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: inspect [-n N] FILE...\n\nPrints the identity, sections and functions hotpatch finds in each PE or ELF file.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	failed := false
	for _, path := range flag.Args() {
		img, err := image.Open(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "inspect: %v\n", err)
			failed = true
			continue
		}
		summarize(os.Stdout, path, img, *n)
	}
	if failed {
		os.Exit(1)
	}
}

// summarize writes a person-readable summary of img.
func summarize(w io.Writer, path string, img *image.Image, n int) {
	id := img.Identity
	fmt.Fprintf(w, "%s: %s %s, base %#x, entry %#x, size %#x\n", path, img.Format, img.Arch, img.Base, img.Entry, img.Size)
	fmt.Fprintf(w, "  identity: machine %#x", id.Machine)
	if img.Format == image.FormatPE {
		fmt.Fprintf(w, ", timestamp %#x, checksum %#x", id.TimeDateStamp, id.CheckSum)
	}
	if id.CodeView != nil {
		fmt.Fprintf(w, ", codeview %s/%d", hex.EncodeToString(id.CodeView.GUID[:]), id.CodeView.Age)
	}
	if len(id.BuildID) > 0 {
		fmt.Fprintf(w, ", build-id %s", hex.EncodeToString(id.BuildID))
	}
	fmt.Fprintf(w, "\n  code sha256 %s\n", hex.EncodeToString(id.CodeHash[:]))

	fmt.Fprintf(w, "  %d sections:", len(img.Sections))
	for _, s := range img.Sections {
		fmt.Fprintf(w, " %s(%#x)", s.Name, s.Size)
	}
	fmt.Fprintf(w, "\n  %d symbols, %d imports, %d exports, %d base relocations\n",
		len(img.Symbols), len(img.Imports), len(img.Exports), len(img.Relocs))

	// Where the function list came from: the reason .pdata alone is not
	// enough (leaf functions have no entry).
	bySource := map[string]int{}
	for _, f := range img.Functions {
		bySource[f.Found.String()]++
	}
	keys := make([]string, 0, len(bySource))
	for k := range bySource {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, bySource[k])
	}
	fmt.Fprintf(w, "  %d functions (found by: %s)\n", len(img.Functions), strings.Join(parts, ", "))
	for i, f := range img.Functions {
		if n > 0 && i == n {
			fmt.Fprintf(w, "    ... %d more\n", len(img.Functions)-n)
			break
		}
		name := f.Name
		if name == "" {
			name = "?"
		}
		fmt.Fprintf(w, "    %#08x %6d  %-28s found by %s, size from %s\n", f.RVA, f.Size, name, f.Found, f.Extent)
	}
}
