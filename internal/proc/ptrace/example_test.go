//go:build linux && amd64

package ptrace_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/ptrace"
)

// Attach to a process, stop it, allocate executable memory within rel32
// reach of its main module, free it, and let it go. The process here is a
// `sleep` this example starts itself; an agent would attach to the pid of
// the service it patches.
func Example() {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	// Attach after the exec: an exec while attached ends the session.
	for b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)); strings.TrimSpace(string(b)) != "sleep"; b, _ = os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)) {
		time.Sleep(time.Millisecond)
	}

	ctx := context.Background()
	p, err := ptrace.Attach(ctx, cmd.Process.Pid, ptrace.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	threads, err := p.Stop(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("threads stopped:", len(threads))

	mods, err := p.Modules()
	if err != nil {
		fmt.Println(err)
		return
	}
	main := mods[0] // the executable is mapped first
	const reach = 1<<31 - 1
	addr, err := p.AllocNear(ctx, main.Base, 4096, reach, proc.ProtRead|proc.ProtExec)
	if err != nil {
		fmt.Println(err)
		return
	}
	r, _ := p.Query(addr)
	fmt.Println("near the module:", addr-main.Base < reach || main.Base-addr < reach, "protection:", r.Prot)
	if err := p.Free(addr, 4096); err != nil {
		fmt.Println(err)
	}
	if err := p.Resume(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// threads stopped: 1
	// near the module: true protection: r-x
}
