package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
)

var diffCommand = &command{
	name:  "diff",
	args:  "OLD NEW",
	short: "which functions changed between two builds of a module",
	long: `Diff compares two builds of one module (package patch/diff): it matches their
functions (by name, then by normalised body, then by call graph), and
classifies each as unchanged, changed (with the reasons), added or removed.
A function that only moved, or whose callees or data moved, is unchanged:
bodies are compared after every PC-relative and relocated operand is
resolved to a symbolic target.

It prints a summary (counts, then each changed, added and removed function),
or with -json the whole report, including every reference of each changed
body resolved against OLD (what a patch must retarget). Progress goes to
stderr; -q silences it.`,
	nargs: 2,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		asJSON := fs.Bool("json", false, "print the whole report as JSON (deterministic: same inputs, same bytes)")
		refs := fs.Bool("refs", false, "after the summary, list the outside references of each changed function")
		quiet := fs.Bool("q", false, "no progress on stderr")
		return func(e *env, args []string) error {
			if *quiet {
				e.stderr = io.Discard
			}
			old, err := loadProgress(e, args[0])
			if err != nil {
				return err
			}
			new, err := loadProgress(e, args[1])
			if err != nil {
				return err
			}
			start := time.Now()
			rep, err := diff.Compare(old, new, nil)
			if err != nil {
				return err
			}
			e.progress("compared in %v", elapsed(start))
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			fmt.Fprint(e.stdout, rep.Summary())
			if *refs {
				writeRefs(e.stdout, rep)
			}
			return nil
		}
	},
}

// loadProgress loads one image and says so on stderr: diffing large
// builds takes a while, and the operator sees which side is slow.
func loadProgress(e *env, path string) (*image.Image, error) {
	start := time.Now()
	img, err := load(path)
	if err != nil {
		return nil, err
	}
	e.progress("loaded %s: %s %s, %d functions in %v", path, img.Format, img.Arch, len(img.Functions), elapsed(start))
	return img, nil
}

// writeRefs lists, per changed function, what its new body reaches and
// what that is in the old image: the input of patch building.
func writeRefs(w io.Writer, rep *diff.Report) {
	for _, f := range rep.Changed() {
		fmt.Fprintf(w, "\n%s: old %#x (%d bytes) -> new %#x (%d bytes)", f.Name(), f.OldRVA, f.OldSize, f.NewRVA, f.NewSize)
		if !f.HotPatchable() {
			fmt.Fprintf(w, ", NOT hot-patchable")
		}
		fmt.Fprintln(w)
		for _, r := range f.References {
			fmt.Fprintf(w, "  +%#-6x %-9s %-11s %-15s %s", r.Offset, r.Form, r.Kind, r.Resolution, targetString(r))
			if r.Why != "" {
				fmt.Fprintf(w, " (%s)", r.Why)
			}
			fmt.Fprintln(w)
		}
	}
}

func targetString(r diff.Reference) string {
	t := r.Target
	s := t.Name
	if s == "" {
		s = fmt.Sprintf("%#x", t.RVA)
	}
	if t.Offset != 0 {
		s += fmt.Sprintf("%+#x", t.Offset)
	}
	if r.Resolution == diff.CarryConstant && len(r.Content) > 0 {
		c := r.Content
		if len(c) > 24 {
			c = c[:24]
		}
		s += fmt.Sprintf(" %q", c)
		if len(r.Content) > 24 {
			s += "..."
		}
	}
	return s
}

// elapsed is the time since start, rounded to what a person reads: small
// fixtures take microseconds, large builds seconds.
func elapsed(start time.Time) time.Duration {
	d := time.Since(start)
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(time.Millisecond)
}
