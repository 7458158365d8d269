// Command livepatch is the README's demo: a running program is fixed
// without a restart. It starts the v1 build of the fixture program (a small
// loop that keeps state and prints one line per tick), builds a signed
// package from the v1 and v2 builds, applies it to the running process, and
// reverts it, printing the program's own output all along: the same PID,
// the counter never resets, and the output switches to v2's and back.
//
//	go run ./examples/livepatch                # Linux: the gcc ELF build, through ptrace
//	GOOS=windows go build ... && wine ...      # Windows: the mingw PE build (see scripts/demo.sh)
//
// It is what an agent does, in one program: image.Open, diff.Compare,
// pkg.Build and Sign (the operator's side), pkg.Load with the trusted key,
// patch.Apply and Revert (the agent's side).
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

func main() {
	ext := "elf"
	if runtime.GOOS == "windows" {
		ext = "exe"
	}
	dir := filepath.Join("testdata", "bin")
	old := flag.String("old", filepath.Join(dir, "c-v1-amd64."+ext), "the build that runs (v1)")
	new := flag.String("new", filepath.Join(dir, "c-v2-amd64."+ext), "the fixed build (v2)")
	lines := flag.Int("lines", 4, "lines of the program's output to show in each phase")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *old, *new, *lines); err != nil {
		fmt.Fprintf(os.Stderr, "livepatch: %v\n", err)
		os.Exit(1)
	}
}

// run is the whole demo, narrated on w.
func run(ctx context.Context, w io.Writer, oldPath, newPath string, lines int) error {
	// The operator's side: two builds in, one signed package out.
	old, err := image.Open(oldPath)
	if err != nil {
		return err
	}
	new, err := image.Open(newPath)
	if err != nil {
		return err
	}
	rep, err := diff.Compare(old, new, nil)
	if err != nil {
		return err
	}
	built, _, err := pkg.Build(old, new, rep, pkg.BuildOptions{Sequence: 1, Module: filepath.Base(oldPath), Description: "v1 to v2"})
	if err != nil {
		return err
	}
	pub, priv, err := pkg.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	if err := built.Sign(priv); err != nil {
		return err
	}
	file, err := built.Marshal()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "built a package of %d functions (%d bytes, signed):", len(built.Functions), len(file))
	for _, f := range rep.Changed() {
		fmt.Fprintf(w, " %s", f.Name())
	}
	fmt.Fprintln(w)

	// The agent's side: load (signature first), find the process, apply.
	p, err := pkg.Load(file, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// 1000 lines, 150 ms apart: the program outlives the demo, which ends it.
	cmd := exec.CommandContext(ctx, oldPath, "1000", "150")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	fmt.Fprintf(w, "started %s: process %d\n", filepath.Base(oldPath), cmd.Process.Pid)
	sc := bufio.NewScanner(out)
	show := func(n int) error {
		for i := 0; i < n; i++ {
			if !sc.Scan() {
				return errors.New("the program stopped printing")
			}
			fmt.Fprintf(w, "  | %s\n", shorten(sc.Text()))
		}
		return nil
	}
	if err := show(lines); err != nil {
		return err
	}

	t, err := attach(ctx, cmd.Process.Pid)
	if err != nil {
		return err
	}
	defer t.Close()
	applied, err := patch.Apply(ctx, t, p, patch.ApplyOptions{})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "applied to process %d: %d functions redirected, threads stopped for %v\n",
		t.PID(), len(applied.Record.Functions), applied.Pause.Round(time.Microsecond))
	// A line may have been on its way while the patch went in.
	if err := show(lines + 1); err != nil {
		return err
	}

	if err := applied.Revert(ctx, patch.ApplyOptions{}); err != nil {
		return err
	}
	fmt.Fprintf(w, "reverted: the original bytes are back\n")
	if err := show(lines + 1); err != nil {
		return err
	}
	return nil
}

// attach opens the process with this OS's back-end.
func attach(ctx context.Context, pid int) (*patch.Target, error) {
	if runtime.GOOS == "windows" {
		return patch.OpenWindows(pid)
	}
	return patch.AttachLinux(ctx, pid)
}

// shorten keeps the fields that tell the story: the counter, the pid,
// and the results v2 changes.
func shorten(line string) string {
	keep := map[string]bool{"n": true, "pid": true, "greet": true, "total": true, "hits": true, "scale": true, "slot": true}
	var parts []string
	// greet's value has spaces: split on " key=" boundaries.
	fields := strings.Fields(line)
	for i := 0; i < len(fields); i++ {
		k, v, ok := strings.Cut(fields[i], "=")
		if !ok {
			continue
		}
		for i+1 < len(fields) && !strings.Contains(fields[i+1], "=") {
			v += " " + fields[i+1]
			i++
		}
		if keep[k] {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, " ")
}
