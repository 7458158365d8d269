//go:build linux && (amd64 || arm64)

package ptrace

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// needNative skips where ptrace cannot run: the arm64 leg runs under
// qemu-user, which does not implement ptrace, so arm64 is compiled and
// vetted only.
func needNative(t testing.TB) {
	t.Helper()
	if runtime.GOARCH != "amd64" || testenv.Emulated() {
		t.Skipf("ptrace tests run on linux/amd64 only: qemu-user (the %s leg) cannot ptrace; arm64 is compiled and vetted only", runtime.GOARCH)
	}
}

var (
	buildMu  sync.Mutex
	buildDir string
)

// fixture compiles testdata/threads.c once per test binary.
func fixture(t testing.TB) string {
	t.Helper()
	needNative(t)
	gcc := testenv.NeedHostTool(t, "gcc")
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		return filepath.Join(buildDir, "threads")
	}
	dir, err := os.MkdirTemp("", "hotpatch-ptrace-")
	require.NoError(t, err)
	out := filepath.Join(dir, "threads")
	// -fcf-protection=none: no endbr64 before value's body, so the test
	// knows its exact bytes (mov eax, 1; ret).
	cmd := exec.Command(gcc, "-O1", "-fcf-protection=none", "-pthread", "-o", out, "testdata/threads.c")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "gcc: %s", b)
	buildDir = dir
	return out
}

func TestMain(m *testing.M) {
	if pid := os.Getenv("HOTPATCH_PTRACE_ATTACH"); pid != "" {
		// Helper mode (TestPermissionOtherUser): attach as another user
		// and report the error.
		var n int
		fmt.Sscan(pid, &n)
		p, err := Attach(context.Background(), n, Options{})
		if err == nil {
			p.Close()
			fmt.Println("attached")
		} else {
			fmt.Printf("permission=%v exited=%v: %v\n", errors.Is(err, proc.ErrPermission), errors.Is(err, proc.ErrExited), err)
		}
		os.Exit(0)
	}
	if target := os.Getenv("HOTPATCH_PTRACE_HOLD"); target != "" {
		// Helper mode (startHolder): another agent holding the target.
		if err := hold(target); err != nil {
			fmt.Println("FAIL:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	if fixture := os.Getenv("HOTPATCH_PTRACE_OWN"); fixture != "" {
		// Helper mode (TestUnprivileged): as an ordinary user, trace a
		// child of one's own through everything a commit does.
		if err := unprivileged(fixture); err != nil {
			fmt.Println("FAIL:", err)
		} else {
			fmt.Println("ok")
		}
		os.Exit(0)
	}
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// child is a fixture process this test started (the only kind of process
// these tests ever attach to).
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
	bin   string
	lines *testenv.Lines
}

// startChild runs the fixture and waits for "ready". Cleanup kills it; a
// test closes its Process first (Cleanup runs in reverse order), because
// waiting for a traced child would swallow the tracer's stop reports.
func startChild(t testing.TB, threads int, mode string) *child {
	t.Helper()
	bin := fixture(t)
	cmd := exec.Command(bin, fmt.Sprint(threads), mode)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	lines := testenv.StartLines(t, cmd, 64, testenv.DropWhenFull)
	c := &child{cmd: cmd, stdin: in, pid: cmd.Process.Pid, bin: bin, lines: lines}
	if mode != "exit" {
		c.waitFor(t, "ready", 0)
	}
	return c
}

// waitFor drains output until want appears; with settle > 0 it then skips
// settle lines (a thread may print a value it computed before a patch)
// and requires the next 20 lines to all be want.
func (c *child) waitFor(t testing.TB, want string, settle int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	what := fmt.Sprintf("%q", want)
	c.lines.WaitFor(t, deadline, what, func(l string) bool { return l == want })
	if settle == 0 {
		return
	}
	anyLine := func(string) bool { return true }
	for i := 0; i < settle; i++ {
		c.lines.WaitFor(t, deadline, what, anyLine)
	}
	for i := 0; i < 20; i++ {
		require.Equal(t, want, c.lines.WaitFor(t, deadline, what, anyLine), "line %d after the first %q", i, want)
	}
}

// waitSteady reads output until n lines in a row are want (or fails
// after 30 s): for tests whose earlier output may still be buffered.
func (c *child) waitSteady(t testing.TB, want string, n int) {
	t.Helper()
	c.lines.WaitFor(t, time.Now().Add(30*time.Second), fmt.Sprintf("%d lines %q in a row", n, want), testenv.InARow(want, n))
}

func attach(t testing.TB, c *child) *Process {
	t.Helper()
	p, err := Attach(context.Background(), c.pid, Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// symbol returns the run-time address of a function of the fixture (a PIE
// whose first PT_LOAD has vaddr 0) and its size.
func symbol(t testing.TB, p *Process, c *child, name string) (uint64, uint64) {
	t.Helper()
	f, err := elf.Open(c.bin)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	mods, err := p.Modules()
	require.NoError(t, err)
	var base uint64
	for _, m := range mods {
		if m.Path == c.bin {
			base = m.Base
		}
	}
	require.NotZero(t, base, "fixture not among modules %+v", mods)
	for _, s := range syms {
		if s.Name == name && elf.ST_TYPE(s.Info) == elf.STT_FUNC {
			return base + s.Value, s.Size
		}
	}
	t.Fatalf("no symbol %s", name)
	return 0, 0
}

// taskStates maps each thread of pid to its state letter from /proc.
func taskStates(t testing.TB, pid int) map[int]byte {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	require.NoError(t, err)
	out := map[int]byte{}
	for _, e := range ents {
		var tid int
		if _, err := fmt.Sscan(e.Name(), &tid); err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
		if err != nil {
			continue // exited meanwhile
		}
		i := strings.LastIndexByte(string(b), ')')
		out[tid] = b[i+2]
	}
	return out
}

// eventuallyRunning waits until no thread of pid is in a tracing stop:
// the target was left running. (Not a timing assertion: a resumed thread
// leaves 't' at once; the bound only ends a broken run.)
func eventuallyRunning(t testing.TB, pid int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stuck := []int{}
		for tid, st := range taskStates(t, pid) {
			if st == 't' {
				stuck = append(stuck, tid)
			}
		}
		if len(stuck) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads %v of %d still in a tracing stop", stuck, pid)
		}
		time.Sleep(time.Millisecond)
	}
}

func readMapsText(t testing.TB, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	require.NoError(t, err)
	return string(b)
}

// allRegs reads every thread's full NT_PRSTATUS register set.
func allRegs(t testing.TB, p *Process) map[int]regs {
	t.Helper()
	out := map[int]regs{}
	require.NoError(t, p.do(func() error {
		for _, th := range p.sortedThreads() {
			var r regs
			if err := getRegs(th.tid, &r); err != nil {
				return err
			}
			out[th.tid] = r
		}
		return nil
	}))
	return out
}

func TestStopResume(t *testing.T) {
	c := startChild(t, 4, "loop")
	p := attach(t, c)
	require.Equal(t, proc.Caps{StopThreads: true, SetPC: true}, p.Caps())
	require.Equal(t, c.pid, p.PID())
	require.Equal(t, thisArch, p.Arch())

	for round := 0; round < 3; round++ {
		threads, err := p.Stop(context.Background())
		require.NoError(t, err)
		states := taskStates(t, c.pid)
		require.Len(t, threads, 5, "main + 4 workers")
		require.Len(t, states, 5)
		maps, err := p.readMaps()
		require.NoError(t, err)
		for _, th := range threads {
			require.Equal(t, byte('t'), states[th.ID], "thread %d state", th.ID)
			m, ok := find(maps, th.PC)
			require.True(t, ok, "thread %d PC %#x unmapped", th.ID, th.PC)
			require.NotZero(t, m.Prot&proc.ProtExec, "thread %d PC %#x in %+v", th.ID, th.PC, m)
			_, ok = find(maps, th.SP)
			require.True(t, ok, "thread %d SP %#x unmapped", th.ID, th.SP)
		}
		require.NoError(t, p.Resume())
		eventuallyRunning(t, c.pid)
		c.waitFor(t, "1", 0)
	}
	// Close while stopped resumes and detaches.
	_, err := p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	eventuallyRunning(t, c.pid)
	c.waitFor(t, "1", 0)
	// Detached: nobody traces the child any more.
	for tid := range taskStates(t, c.pid) {
		require.Zero(t, tracerPid(c.pid, tid), "thread %d still traced", tid)
	}
}

// TestRedirect is the use case: overwrite a function body in the running
// target, see its output change, restore, see it change back, and find
// bytes and mappings exactly as before.
func TestRedirect(t *testing.T) {
	c := startChild(t, 4, "loop")
	p := attach(t, c)
	fn, size := symbol(t, p, c, "value")
	orig := make([]byte, size)
	require.NoError(t, p.ReadAt(orig, fn))
	require.Equal(t, []byte{0xb8, 1, 0, 0, 0, 0xc3}, orig, "mov eax, 1; ret")
	mapsBefore := readMapsText(t, c.pid)
	region, err := p.Query(fn)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtExec, region.Prot)

	_, err = p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.WriteAt([]byte{0xb8, 2, 0, 0, 0, 0xc3}, fn)) // mov eax, 2; ret
	require.NoError(t, p.FlushICache(fn, size))
	require.NoError(t, p.Resume())
	c.waitFor(t, "2", 8)

	_, err = p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.WriteAt(orig, fn))
	require.NoError(t, p.Resume())
	c.waitFor(t, "1", 8)

	now := make([]byte, size)
	require.NoError(t, p.ReadAt(now, fn))
	require.Equal(t, orig, now)
	require.Equal(t, mapsBefore, readMapsText(t, c.pid), "mappings and protections unchanged")
}

func TestAllocNear(t *testing.T) {
	c := startChild(t, 4, "loop")
	p := attach(t, c)
	fn, _ := symbol(t, p, c, "value")
	const reach = 1<<31 - 1

	threads, err := p.Stop(context.Background())
	require.NoError(t, err)
	before := allRegs(t, p)
	require.Len(t, before, len(threads))

	code, err := p.AllocNear(context.Background(), fn, 100, reach, proc.ProtRead|proc.ProtExec)
	require.NoError(t, err)
	require.True(t, within(fn, code, 4096, reach), "%#x not within 2 GiB of %#x", code, fn)
	require.Equal(t, before, allRegs(t, p), "registers after injecting mmap")
	r, err := p.Query(code)
	require.NoError(t, err)
	require.Equal(t, proc.Region{Base: code, Size: 4096, Prot: proc.ProtRead | proc.ProtExec}, r)
	require.Contains(t, readMapsText(t, c.pid), fmt.Sprintf("%x-%x r-xp", code, code+4096))

	data, err := p.AllocNear(context.Background(), fn, 5000, reach, proc.ProtRead|proc.ProtWrite)
	require.NoError(t, err)
	r, err = p.Query(data)
	require.NoError(t, err)
	require.Equal(t, proc.Region{Base: data, Size: 8192, Prot: proc.ProtRead | proc.ProtWrite}, r)

	// Protect: RW -> RX -> RW, returning the previous protection.
	prev, err := p.Protect(data, 8192, proc.ProtRead|proc.ProtExec)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtWrite, prev)
	r, err = p.Query(data)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtExec, r.Prot)
	prev, err = p.Protect(data, 8192, proc.ProtRead|proc.ProtWrite)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtExec, prev)
	require.Equal(t, before, allRegs(t, p), "registers after mprotect")

	// Run the new memory: mov eax, 3; ret there, and a jmp rel32 to it at value.
	require.NoError(t, p.WriteAt([]byte{0xb8, 3, 0, 0, 0, 0xc3}, code))
	orig := make([]byte, 5)
	require.NoError(t, p.ReadAt(orig, fn))
	jmp := []byte{0xe9, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(jmp[1:], uint32(int32(int64(code)-int64(fn+5))))
	require.NoError(t, p.WriteAt(jmp, fn))
	require.NoError(t, p.Resume())
	c.waitFor(t, "3", 8)
	_, err = p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.WriteAt(orig, fn))
	require.NoError(t, p.Resume())
	c.waitFor(t, "1", 8)

	// Free, while the process runs (one thread is stopped for the injection).
	require.NoError(t, p.Free(code, 100))
	require.NoError(t, p.Free(data, 5000))
	_, err = p.Query(code)
	require.ErrorIs(t, err, ErrUnmapped)
	_, err = p.Query(data)
	require.ErrorIs(t, err, ErrUnmapped)
	eventuallyRunning(t, c.pid)
	c.waitFor(t, "1", 0)
}

// TestInjectionErrors: failing injected syscalls and impossible requests
// leave every register as it was, and the target running.
func TestInjectionErrors(t *testing.T) {
	c := startChild(t, 2, "loop")
	p := attach(t, c)
	fn, _ := symbol(t, p, c, "value")
	_, err := p.Stop(context.Background())
	require.NoError(t, err)
	before := allRegs(t, p)

	// mprotect of an unmapped page fails inside the target (ENOMEM).
	_, err = p.Protect(0x10000, 4096, proc.ProtRead)
	var ae *proc.AccessError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, "protect", ae.Op)
	err = p.syscallOp("protect", sysMprotect, 0x10000, 4096, 1)
	require.ErrorIs(t, err, syscall.ENOMEM)
	require.NoError(t, p.Free(0x10000, 4096)) // munmap of nothing succeeds
	// No room: nothing within 0 bytes of value.
	_, err = p.AllocNear(context.Background(), fn, 4096, 0, proc.ProtRead)
	require.ErrorIs(t, err, proc.ErrNoMemory)
	// Bad arguments.
	_, err = p.AllocNear(context.Background(), fn, 0, 1<<31, proc.ProtRead)
	require.Error(t, err)
	require.Error(t, p.Free(fn|1, 1))
	require.Equal(t, before, allRegs(t, p))
	// Reads past the end of a mapping fail, naming the address.
	err = p.ReadAt(make([]byte, 16), 0x10000)
	require.ErrorAs(t, err, &ae)
	require.Equal(t, uint64(0x10000), ae.Addr)

	require.NoError(t, p.Resume())
	eventuallyRunning(t, c.pid)
	c.waitFor(t, "1", 0)
}

// TestAllocNearRunning: AllocNear without Stop stops one thread only, and
// restores it exactly.
func TestAllocNearRunning(t *testing.T) {
	c := startChild(t, 2, "loop")
	p := attach(t, c)
	fn, _ := symbol(t, p, c, "value")
	addr, err := p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead|proc.ProtWrite)
	require.NoError(t, err)
	eventuallyRunning(t, c.pid)
	require.NoError(t, p.WriteAt([]byte("hello"), addr))
	got := make([]byte, 5)
	require.NoError(t, p.ReadAt(got, addr))
	require.Equal(t, "hello", string(got))
	require.NoError(t, p.Free(addr, 4096))
	c.waitFor(t, "1", 0)
}

// TestSpawnWhileStopping: the target creates threads without pause; every
// Stop must return with every thread it has stopped, none left running.
func TestSpawnWhileStopping(t *testing.T) {
	c := startChild(t, 2, "spawn")
	p := attach(t, c)
	for round := 0; round < 20; round++ {
		threads, err := p.Stop(context.Background())
		require.NoError(t, err)
		states := taskStates(t, c.pid)
		ids := map[int]bool{}
		for _, th := range threads {
			ids[th.ID] = true
		}
		for tid, st := range states {
			// A thread that has exited but is not yet reaped shows as a
			// zombie: it runs no code.
			if st == 'Z' || st == 'X' {
				continue
			}
			require.Equal(t, byte('t'), st, "round %d: thread %d not stopped (state %c)", round, tid, st)
			require.True(t, ids[tid], "round %d: thread %d stopped but not returned", round, tid)
		}
		require.NoError(t, p.Resume())
	}
	eventuallyRunning(t, c.pid)
}

func TestExited(t *testing.T) {
	t.Run("zombie", func(t *testing.T) {
		c := startChild(t, 0, "exit")
		// Not reaped: the pid stays ours (a zombie) until the cleanup waits.
		for !gone(c.pid) {
			time.Sleep(time.Millisecond)
		}
		_, err := Attach(context.Background(), c.pid, Options{})
		require.ErrorIs(t, err, proc.ErrExited)
	})
	t.Run("running", func(t *testing.T) {
		c := startChild(t, 2, "loop")
		p := attach(t, c)
		require.NoError(t, c.cmd.Process.Kill())
		_, err := p.Stop(context.Background())
		require.ErrorIs(t, err, proc.ErrExited)
		require.ErrorIs(t, p.ReadAt(make([]byte, 1), 0x10000), proc.ErrExited)
		_, err = p.AllocNear(context.Background(), 1<<32, 4096, 1<<31, proc.ProtRead)
		require.ErrorIs(t, err, proc.ErrExited)
		require.NoError(t, p.Close())
	})
	t.Run("stopped", func(t *testing.T) {
		c := startChild(t, 2, "loop")
		p := attach(t, c)
		fn, _ := symbol(t, p, c, "value")
		_, err := p.Stop(context.Background())
		require.NoError(t, err)
		require.NoError(t, c.cmd.Process.Kill())
		// Whichever operation meets the death first reports it.
		_, err = p.AllocNear(context.Background(), fn, 4096, 1<<31, proc.ProtRead)
		require.ErrorIs(t, err, proc.ErrExited)
		require.ErrorIs(t, p.Resume(), proc.ErrExited)
		require.ErrorIs(t, p.WriteAt([]byte{1}, fn), proc.ErrExited)
	})
}

// TestHeldBySelf: a process this test process already traces (another
// Process of ours) is held, not forbidden, and Attach does not wait for it
// even without a deadline: the caller may be the one holding it.
func TestHeldBySelf(t *testing.T) {
	c := startChild(t, 2, "loop")
	p := attach(t, c)
	_, err := Attach(context.Background(), c.pid, Options{})
	require.ErrorIs(t, err, proc.ErrHeld)
	require.NotErrorIs(t, err, proc.ErrPermission)
	var held *proc.HeldError
	require.ErrorAs(t, err, &held)
	require.True(t, held.Self)
	require.Equal(t, c.pid, held.PID)
	require.Equal(t, os.Getpid(), held.HolderPID)
	require.NoError(t, held.Err, "it did not wait")
	require.Contains(t, err.Error(), fmt.Sprintf("process %d is held by this process (pid %d", c.pid, os.Getpid()))
	require.NoError(t, p.Close())
	// Once the first tracer is gone, attaching works.
	p2 := attach(t, c)
	_, err = p2.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p2.Resume())
}

// TestPermissionOtherUser: an unprivileged tracer (this test binary run
// as nobody) attaching to a process of another user (our root-owned child)
// gets ErrPermission naming the pid. Needs root to switch users.
func TestPermissionOtherUser(t *testing.T) {
	c := startChild(t, 1, "loop")
	if os.Geteuid() != 0 {
		t.Skip("needs root: the test runs its own binary as another user against its child")
	}
	self, err := os.Executable()
	require.NoError(t, err)
	// Our binary sits in a directory only root may enter: copy it out.
	dir := publicDir(t)
	bin := copyTo(t, self, dir, "helper")
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("HOTPATCH_PTRACE_ATTACH=%d", c.pid))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Logf("as nobody: %s", out)
	require.Contains(t, string(out), "permission=true exited=false")
	require.Contains(t, string(out), fmt.Sprintf("pid %d", c.pid))
	c.waitFor(t, "1", 0)
}

// unprivileged runs in the helper process of TestUnprivileged.
func unprivileged(fixture string) error {
	cmd := exec.Command(fixture, "2", "loop")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Text() != "ready" {
		if !sc.Scan() {
			return fmt.Errorf("fixture did not start: %v", sc.Err())
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	ctx := context.Background()
	p, err := Attach(ctx, cmd.Process.Pid, Options{})
	if err != nil {
		return err
	}
	defer p.Close()
	mods, err := p.Modules()
	if err != nil {
		return err
	}
	if _, err := p.Stop(ctx); err != nil {
		return err
	}
	a, err := p.AllocNear(ctx, mods[0].Base, 4096, 1<<31-1, proc.ProtRead|proc.ProtExec)
	if err != nil {
		return err
	}
	b := make([]byte, 16)
	if err := p.ReadAt(b, mods[0].Base); err != nil {
		return err
	}
	if err := p.WriteAt(b, mods[0].Base); err != nil {
		return err
	}
	if _, err := p.Protect(a, 4096, proc.ProtRead); err != nil {
		return err
	}
	if err := p.Free(a, 4096); err != nil {
		return err
	}
	if err := p.Resume(); err != nil {
		return err
	}
	return p.Close()
}

// TestUnprivileged: nothing needs root. As nobody, this test binary starts
// the fixture and attaches, stops, allocates, writes, protects, frees and
// detaches. (Kernels with Yama ptrace_scope=1 allow it too: the tracer is
// the child's parent.)
func TestUnprivileged(t *testing.T) {
	fix := fixture(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to another user (running unprivileged already: the other tests cover it)")
	}
	dir := publicDir(t)
	self, err := os.Executable()
	require.NoError(t, err)
	bin := copyTo(t, self, dir, "helper")
	fixBin := copyTo(t, fix, dir, "threads")
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOTPATCH_PTRACE_OWN="+fixBin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr strings.Builder
	cmd.Stderr = &stderr // under -cover, complaints that nobody cannot write coverage data
	out, err := cmd.Output()
	require.NoError(t, err, "%s%s", out, stderr.String())
	require.Equal(t, "ok\n", string(out), stderr.String())
}

// publicDir is a temporary directory other users may enter.
func publicDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "hotpatch-ptrace-other-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	return dir
}

func copyTo(t testing.TB, src, dir, name string) string {
	b, err := os.ReadFile(src)
	require.NoError(t, err)
	dst := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(dst, b, 0o755))
	return dst
}

// TestStopUnwinds: a Stop whose context ends midway leaves no thread
// stopped and no register changed.
func TestStopUnwinds(t *testing.T) {
	c := startChild(t, 4, "loop")
	p := attach(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	p.testHookStopping = cancel
	_, err := p.Stop(ctx)
	require.ErrorIs(t, err, context.Canceled)
	p.testHookStopping = nil
	eventuallyRunning(t, c.pid)
	c.waitFor(t, "1", 0)

	_, err = p.Stop(context.Background())
	require.NoError(t, err)
	require.NoError(t, p.Resume())
}

func TestSetPC(t *testing.T) {
	c := startChild(t, 2, "busy")
	p := attach(t, c)
	marker, _ := symbol(t, p, c, "marker")
	worker, size := symbol(t, p, c, "worker")
	value, vsize := symbol(t, p, c, "value")
	inLoop := func(pc uint64) bool {
		return pc >= worker && pc < worker+size || pc >= value && pc < value+vsize
	}
	// Catch a worker in its loop (in user code, not inside a syscall the
	// kernel would restart at the old PC): busy workers are there nearly
	// all the time, but may be writing a line.
	var moved int
	for try := 0; try < 2000 && moved == 0; try++ {
		threads, err := p.Stop(context.Background())
		require.NoError(t, err)
		if try == 0 {
			require.Error(t, p.SetPC(-1, 0), "unknown thread")
		}
		for _, th := range threads {
			if inLoop(th.PC) {
				require.NoError(t, p.SetPC(th.ID, marker))
				moved = th.ID
				break
			}
		}
		// Every other thread: set to where it is, it must carry on as before.
		for _, th := range threads {
			if th.ID != moved {
				require.NoError(t, p.SetPC(th.ID, th.PC))
			}
		}
		require.NoError(t, p.Resume())
	}
	require.NotZero(t, moved, "no worker caught in its loop in 2000 stops")
	require.Error(t, p.SetPC(moved, marker), "not stopped")
	c.waitFor(t, "moved", 0)
	c.waitFor(t, "1", 0) // the other worker is unaffected
}

func TestMemoryIO(t *testing.T) {
	c := startChild(t, 1, "loop")
	p := attach(t, c)
	fn, size := symbol(t, p, c, "value")
	b := make([]byte, size)
	require.NoError(t, p.ReadAt(b, fn))
	f, err := os.Open(c.bin)
	require.NoError(t, err)
	defer f.Close()
	ef, err := elf.NewFile(f)
	require.NoError(t, err)
	text := ef.Section(".text")
	// The oracle: the same bytes straight from the file.
	mods, err := p.Modules()
	require.NoError(t, err)
	var base uint64
	for _, m := range mods {
		if m.Path == c.bin {
			base = m.Base
			require.Equal(t, "threads", m.Name)
		}
	}
	fileBytes := make([]byte, size)
	_, err = f.ReadAt(fileBytes, int64(text.Offset+(fn-base-text.Addr)))
	require.NoError(t, err)
	require.Equal(t, fileBytes, b)
	require.NoError(t, p.ReadAt(nil, 0))
	err = p.ReadAt(make([]byte, 8), 1<<63)
	require.ErrorIs(t, err, ErrUnmapped)
	_, err = p.Query(0x1000)
	require.ErrorIs(t, err, ErrUnmapped)
	require.NoError(t, p.Close())
	require.ErrorIs(t, p.ReadAt(b, fn), errClosed)
	require.NoError(t, p.Close(), "second Close")
	require.True(t, errors.Is(p.Resume(), errClosed))
}

func benchStopResume(b *testing.B, threads int) {
	c := startChild(b, threads, "loop")
	p := attach(b, c)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		if err := p.Resume(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStopResume is the pause a commit costs before any write: every
// thread interrupted, waited for, registers read, and resumed.
func BenchmarkStopResume(b *testing.B) {
	for _, n := range []int{1, 8} {
		// The main thread (in pause()) plus n-1 workers (mostly asleep,
		// 20000 calls between 5 ms sleeps).
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) { benchStopResume(b, n-1) })
	}
}

// BenchmarkWrite writes 16 bytes into the target's code through /proc/PID/mem.
func BenchmarkWrite(b *testing.B) {
	c := startChild(b, 1, "loop")
	p := attach(b, c)
	fn, _ := symbol(b, p, c, "main")
	buf := make([]byte, 16)
	if err := p.ReadAt(buf, fn); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(16)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// The same bytes back: main runs once, but nothing changes anyway.
		if err := p.WriteAt(buf, fn); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocFree is one injected mmap plus one injected munmap with
// the process stopped.
func BenchmarkAllocFree(b *testing.B) {
	c := startChild(b, 1, "loop")
	p := attach(b, c)
	fn, _ := symbol(b, p, c, "value")
	if _, err := p.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a, err := p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead|proc.ProtExec)
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Free(a, 4096); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := p.Resume(); err != nil {
		b.Fatal(err)
	}
}

// TestSignals: stops and injections race with a signal storm; every signal
// is delivered (the process has a handler; one lost would not show, one
// misdelivered as a stop would hang, a broken syscall restart prints "bad
// errno" and exits), and registers come back exactly.
func TestSignals(t *testing.T) {
	c := startChild(t, 2, "signal")
	p := attach(t, c)
	fn, _ := symbol(t, p, c, "value")
	for round := 0; round < 10; round++ {
		_, err := p.Stop(context.Background())
		require.NoError(t, err)
		before := allRegs(t, p)
		a, err := p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead|proc.ProtExec)
		require.NoError(t, err)
		require.NoError(t, p.Free(a, 4096))
		require.Equal(t, before, allRegs(t, p), "round %d", round)
		require.NoError(t, p.Resume())
		// Injection into a running process, signals flying.
		a, err = p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead)
		require.NoError(t, err)
		require.NoError(t, p.Free(a, 4096))
		c.waitFor(t, "1", 0)
	}
	eventuallyRunning(t, c.pid)
}

// TestGroupStop: a process stopped by SIGSTOP stays stopped across our
// Stop/Resume (PTRACE_LISTEN), can be patched meanwhile, and runs again on
// SIGCONT.
func TestGroupStop(t *testing.T) {
	c := startChild(t, 2, "loop")
	p := attach(t, c)
	fn, _ := symbol(t, p, c, "value")
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGSTOP))
	// Wait until every thread reported the group-stop to the tracer.
	require.NoError(t, p.do(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return p.waitUntil(ctx, func() bool {
			for _, th := range p.threads {
				if !th.group {
					return false
				}
			}
			return true
		})
	}))
	threads, err := p.Stop(context.Background())
	require.NoError(t, err)
	require.Len(t, threads, 3)
	before := allRegs(t, p)
	a, err := p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead|proc.ProtWrite)
	require.NoError(t, err)
	require.NoError(t, p.Free(a, 4096))
	require.Equal(t, before, allRegs(t, p))
	require.NoError(t, p.WriteAt([]byte{0xb8, 4}, fn)) // mov eax, 4
	require.NoError(t, p.Resume())
	// Still stopped by SIGSTOP: no output for a while would prove little;
	// the tracer's view says every thread is held in its group-stop.
	require.NoError(t, p.do(func() error {
		for _, th := range p.threads {
			if !th.group || th.stopped {
				return fmt.Errorf("thread %d: group=%v stopped=%v", th.tid, th.group, th.stopped)
			}
		}
		return nil
	}))
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGCONT))
	c.waitFor(t, "4", 8)
	require.NoError(t, p.WriteAt([]byte{0xb8, 1}, fn))
	c.waitFor(t, "1", 8)
}

// TestZombieLeader: the main thread has called pthread_exit (a zombie
// until the process exits) while workers run on, before or after Attach.
// Stop returns the live threads only; injection uses one of them.
func TestZombieLeader(t *testing.T) {
	for _, before := range []bool{true, false} {
		t.Run(fmt.Sprintf("exited_before_attach=%v", before), func(t *testing.T) {
			c := startChild(t, 2, "leaderexit")
			leaderExit := func() {
				_, err := c.stdin.Write([]byte{1})
				require.NoError(t, err)
				for taskState(c.pid, c.pid) != 'Z' {
					time.Sleep(time.Millisecond)
				}
			}
			if before {
				leaderExit()
			}
			p := attach(t, c)
			fn, _ := symbol(t, p, c, "value")
			if !before {
				leaderExit()
			}
			require.False(t, gone(c.pid))
			a, err := p.AllocNear(context.Background(), fn, 4096, 1<<31-1, proc.ProtRead)
			require.NoError(t, err)
			threads, err := p.Stop(context.Background())
			require.NoError(t, err)
			require.Len(t, threads, 2, "the workers, not the zombie leader")
			for _, th := range threads {
				require.NotEqual(t, c.pid, th.ID)
				require.Equal(t, byte('t'), taskState(c.pid, th.ID))
			}
			require.NoError(t, p.Free(a, 4096))
			require.NoError(t, p.WriteAt([]byte{0xb8, 5}, fn))
			require.NoError(t, p.Resume())
			c.waitFor(t, "5", 8)
			require.NoError(t, p.Close())
			c.waitFor(t, "5", 0)
			// The process ends when its last thread does: reported as exited.
			p = attach(t, c)
			require.NoError(t, c.cmd.Process.Kill())
			_, err = p.Stop(context.Background())
			require.ErrorIs(t, err, proc.ErrExited)
		})
	}
}

// TestExec: a thread of the target executes a new program while we are
// attached. Everything we knew (addresses, modules) is void: operations
// fail with ErrExited, and Close leaves the new program running, untraced.
func TestExec(t *testing.T) {
	c := startChild(t, 2, "exec")
	p := attach(t, c)
	_, err := c.stdin.Write([]byte{1})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.pid))
		return strings.TrimSpace(string(b)) == "sleep"
	}, 10*time.Second, time.Millisecond)
	_, err = p.Stop(context.Background())
	require.ErrorIs(t, err, proc.ErrExited)
	require.ErrorContains(t, err, "executed a new program")
	require.ErrorIs(t, p.WriteAt([]byte{1}, 0x10000), proc.ErrExited)
	require.NoError(t, p.Close())
	eventuallyRunning(t, c.pid)
	for tid := range taskStates(t, c.pid) {
		require.Zero(t, tracerPid(c.pid, tid), "thread %d still traced", tid)
	}
	require.Equal(t, "sleep", strings.TrimSpace(string(must(os.ReadFile(fmt.Sprintf("/proc/%d/comm", c.pid))))))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestStress: 8 busy threads call value() without pause while the test
// stops, flips value() between two bodies, resumes, and now and then
// allocates and frees memory by injection. The child checks every single
// result (1 or 2, else it exits); at the end the original bytes and
// mappings are back.
func TestStress(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 20
	}
	c := startChild(t, 8, "busy")
	p := attach(t, c)
	fn, size := symbol(t, p, c, "value")
	orig := make([]byte, size)
	require.NoError(t, p.ReadAt(orig, fn))
	mapsBefore := readMapsText(t, c.pid)
	bodies := [][]byte{{0xb8, 2, 0, 0, 0, 0xc3}, orig}
	ctx := context.Background()
	for i := 0; i < cycles; i++ {
		threads, err := p.Stop(ctx)
		require.NoError(t, err)
		require.Len(t, threads, 9)
		require.NoError(t, p.WriteAt(bodies[i%2], fn))
		if i%50 == 0 {
			a, err := p.AllocNear(ctx, fn, 4096, 1<<31-1, proc.ProtRead|proc.ProtExec)
			require.NoError(t, err)
			require.NoError(t, p.Free(a, 4096))
		}
		require.NoError(t, p.Resume())
	}
	// The last write put the original back (cycles is even). Lines from
	// the cycles may still be buffered: wait for a steady run of "1".
	c.waitSteady(t, "1", 100)
	now := make([]byte, size)
	require.NoError(t, p.ReadAt(now, fn))
	require.Equal(t, orig, now)
	require.Equal(t, mapsBefore, readMapsText(t, c.pid))
}
