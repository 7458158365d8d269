package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

var inspectCommand = &command{
	name:  "inspect",
	args:  "IMAGE",
	short: "identity, sections and functions of a PE or ELF module",
	long: `Inspect loads IMAGE (PE or ELF, x86-64 or ARM64) with package image and
prints its identity (what a patch binds to: machine, timestamp, checksum,
CodeView GUID or build ID, SHA-256 of the code), its sections, and how many
functions it holds by where they were found (.pdata, symbols, exports,
direct-call targets, the entry point). With -functions it lists every
function: address, size, name and the evidence for it.`,
	nargs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		functions := fs.Bool("functions", false, "list every function (RVA, size, name, where it was found)")
		asJSON := fs.Bool("json", false, "print one JSON object instead of text")
		return func(e *env, args []string) error {
			img, err := load(args[0])
			if err != nil {
				return err
			}
			rep := newInspectReport(args[0], img, *functions)
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.writeText(e.stdout)
			return nil
		}
	},
}

// load reads and parses one module. Its errors name the file once: "open
// X: no such file or directory", or "X: malformed image ...".
func load(path string) (*image.Image, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	img, err := image.Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return img, nil
}

// inspectReport is what inspect prints, as text or JSON. Addresses are
// numbers in JSON (RVAs, as everywhere in the library) and hex in text.
type inspectReport struct {
	Path     string            `json:"path"`
	Format   string            `json:"format"`
	Arch     string            `json:"arch"`
	Base     uint64            `json:"base"`
	Entry    uint32            `json:"entry"`
	Size     uint32            `json:"size"`
	Identity inspectIdentity   `json:"identity"`
	Sections []inspectSection  `json:"sections"`
	Counts   inspectCounts     `json:"counts"`
	BySource []sourceCount     `json:"functions_by_source"`
	Funcs    []inspectFunction `json:"functions,omitempty"`
}

type inspectIdentity struct {
	Machine       uint16 `json:"machine"`
	TimeDateStamp uint32 `json:"timestamp,omitempty"`
	CheckSum      uint32 `json:"checksum,omitempty"`
	SizeOfImage   uint32 `json:"size_of_image,omitempty"`
	CodeView      string `json:"codeview,omitempty"` // GUID hex "/" age
	PDB           string `json:"pdb,omitempty"`
	BuildID       string `json:"build_id,omitempty"`
	CodeHash      string `json:"code_hash"`
}

type inspectSection struct {
	Name  string `json:"name"`
	RVA   uint32 `json:"rva"`
	Size  uint32 `json:"size"`
	Flags string `json:"flags"` // "rwx" letters, "u" for zero-filled
}

type inspectCounts struct {
	Functions int `json:"functions"`
	Dropped   int `json:"dropped"` // candidates outside executable sections
	Symbols   int `json:"symbols"`
	Imports   int `json:"imports"`
	Exports   int `json:"exports"`
	Relocs    int `json:"base_relocations"`
}

// sourceCount is how many functions have exactly this combination of
// evidence ("pdata+symbol").
type sourceCount struct {
	Source string `json:"source"`
	Count  int    `json:"count"`
}

type inspectFunction struct {
	Name   string `json:"name,omitempty"`
	RVA    uint32 `json:"rva"`
	Size   uint32 `json:"size"`
	Found  string `json:"found"`
	Extent string `json:"extent"`
}

func newInspectReport(path string, img *image.Image, functions bool) *inspectReport {
	id := img.Identity
	r := &inspectReport{
		Path:   path,
		Format: img.Format.String(),
		Arch:   img.Arch.String(),
		Base:   img.Base,
		Entry:  img.Entry,
		Size:   img.Size,
		Identity: inspectIdentity{
			Machine:       id.Machine,
			TimeDateStamp: id.TimeDateStamp,
			CheckSum:      id.CheckSum,
			SizeOfImage:   id.SizeOfImage,
			BuildID:       hex.EncodeToString(id.BuildID),
			CodeHash:      hex.EncodeToString(id.CodeHash[:]),
		},
		Counts: inspectCounts{
			Functions: len(img.Functions),
			Dropped:   len(img.Dropped),
			Symbols:   len(img.Symbols),
			Imports:   len(img.Imports),
			Exports:   len(img.Exports),
			Relocs:    len(img.Relocs),
		},
	}
	if cv := id.CodeView; cv != nil {
		r.Identity.CodeView = fmt.Sprintf("%s/%d", hex.EncodeToString(cv.GUID[:]), cv.Age)
		r.Identity.PDB = cv.Path
	}
	for _, s := range img.Sections {
		r.Sections = append(r.Sections, inspectSection{Name: s.Name, RVA: s.RVA, Size: s.Size, Flags: sectionFlags(s.Flags)})
	}
	by := map[string]int{}
	for _, f := range img.Functions {
		by[f.Found.String()]++
	}
	for k, n := range by {
		r.BySource = append(r.BySource, sourceCount{Source: k, Count: n})
	}
	sort.Slice(r.BySource, func(i, j int) bool { return r.BySource[i].Source < r.BySource[j].Source })
	if functions {
		for _, f := range img.Functions {
			r.Funcs = append(r.Funcs, inspectFunction{Name: f.Name, RVA: f.RVA, Size: f.Size, Found: f.Found.String(), Extent: f.Extent.String()})
		}
	}
	return r
}

func sectionFlags(f image.SectionFlags) string {
	b := []byte("---")
	if f&image.SectionRead != 0 {
		b[0] = 'r'
	}
	if f&image.SectionWrite != 0 {
		b[1] = 'w'
	}
	if f&image.SectionExec != 0 {
		b[2] = 'x'
	}
	if f&image.SectionUninit != 0 {
		b = append(b, 'u')
	}
	return string(b)
}

// writeText prints the identity of an image of format (its PE-only fields
// for PE) in two lines.
func (id inspectIdentity) writeText(w io.Writer, format string) {
	fmt.Fprintf(w, "identity: machine %#x", id.Machine)
	if format == image.FormatPE.String() {
		fmt.Fprintf(w, ", timestamp %#x, checksum %#x, size of image %#x", id.TimeDateStamp, id.CheckSum, id.SizeOfImage)
	}
	if id.CodeView != "" {
		fmt.Fprintf(w, ", codeview %s", id.CodeView)
	}
	if id.BuildID != "" {
		fmt.Fprintf(w, ", build-id %s", id.BuildID)
	}
	fmt.Fprintf(w, "\n  code sha256 %s\n", id.CodeHash)
}

func (r *inspectReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s: %s %s, base %#x, entry %#x, size %#x\n", r.Path, r.Format, r.Arch, r.Base, r.Entry, r.Size)
	r.Identity.writeText(w, r.Format)

	fmt.Fprintf(w, "%d sections:\n", len(r.Sections))
	for _, s := range r.Sections {
		fmt.Fprintf(w, "  %-10s %#08x %#8x %s\n", s.Name, s.RVA, s.Size, s.Flags)
	}
	c := r.Counts
	fmt.Fprintf(w, "%d symbols, %d imports, %d exports, %d base relocations\n", c.Symbols, c.Imports, c.Exports, c.Relocs)
	parts := make([]string, len(r.BySource))
	for i, s := range r.BySource {
		parts[i] = fmt.Sprintf("%s %d", s.Source, s.Count)
	}
	fmt.Fprintf(w, "%d functions (found by: %s)", c.Functions, strings.Join(parts, ", "))
	if c.Dropped > 0 {
		fmt.Fprintf(w, "; %d candidates outside code dropped", c.Dropped)
	}
	fmt.Fprintln(w)
	for _, f := range r.Funcs {
		name := f.Name
		if name == "" {
			name = "?"
		}
		fmt.Fprintf(w, "  %#08x %6d  %-32s found by %s, size from %s\n", f.RVA, f.Size, name, f.Found, f.Extent)
	}
}
