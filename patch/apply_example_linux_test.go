//go:build linux && amd64

package patch_test

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"fmt"
	"os/exec"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// An agent fixes a running program: the operator builds and signs a package
// from two release builds; the agent loads it (signature first), applies it
// to the live process through ptrace, and later reverts it.
func ExampleApply() {
	const v1, v2 = "../testdata/bin/c-v1-amd64.elf", "../testdata/bin/c-v2-amd64.elf"

	// Operator: diff the two builds, build, sign, write the file.
	old, _ := image.Open(v1)
	nw, _ := image.Open(v2)
	rep, _ := diff.Compare(old, nw, nil)
	p, _, _ := pkg.Build(old, nw, rep, pkg.BuildOptions{Module: "c-v1-amd64.elf"})
	pub, priv, _ := pkg.GenerateKey(nil)
	_ = p.Sign(priv)
	file, _ := p.Marshal()

	// The running program (v1), printing a line every 10 ms.
	cmd := exec.Command(v1, "100000", "10")
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	lines := bufio.NewScanner(out)
	greet := func() string {
		if !lines.Scan() {
			panic("the program stopped printing")
		}
		_, g, _ := strings.Cut(lines.Text(), " greet=")
		g, _, _ = strings.Cut(g, " leaf=")
		return g
	}
	fmt.Println(greet())

	// Agent: load with the trusted key, attach, apply.
	ctx := context.Background()
	loaded, err := pkg.Load(file, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	if err != nil {
		fmt.Println(err)
		return
	}
	t, err := patch.AttachLinux(ctx, cmd.Process.Pid)
	if err != nil {
		fmt.Println(err)
		return
	}
	applied, err := patch.Apply(ctx, t, loaded, patch.ApplyOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for greet() != "hello from v2" {
	}
	fmt.Println("hello from v2")

	// Revert: the program is v1 again, same process.
	if err := applied.Revert(ctx, patch.ApplyOptions{}); err != nil {
		fmt.Println(err)
		return
	}
	for greet() != "hello from v1" {
	}
	fmt.Println("hello from v1")
	_ = t.Close()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// Output:
	// hello from v1
	// hello from v2
	// hello from v1
}
