//go:build linux && amd64

package patch

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

func needPtrace(t testing.TB) {
	t.Helper()
	if testenv.Emulated() {
		t.Skip("ptrace tests run natively on linux/amd64 only (qemu-user cannot ptrace)")
	}
}

var (
	childOnce sync.Once
	childBin  string
	childErr  error
)

// childProgram compiles testdata/child.c once per test binary.
func childProgram(t testing.TB) string {
	t.Helper()
	needPtrace(t)
	gcc := testenv.NeedHostTool(t, "gcc")
	childOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hotpatch-patch-")
		if err != nil {
			childErr = err
			return
		}
		childBin = filepath.Join(dir, "child")
		// -no-pie: symbol addresses are run-time addresses.
		// -fcf-protection=none: no endbr64, so the bytes are known.
		out, err := exec.Command(gcc, "-O1", "-fcf-protection=none", "-no-pie", "-pthread", "-o", childBin, "testdata/child.c").CombinedOutput()
		if err != nil {
			childErr = fmt.Errorf("gcc: %v: %s", err, out)
		}
	})
	require.NoError(t, childErr)
	return childBin
}

type cchild struct {
	pid   int
	stdin io.WriteCloser
	lines *testenv.Lines
	syms  map[string]Function
}

// startChild runs the child and waits for "ready". Its Cleanup kills it;
// the Target's Cleanup, registered later, runs first (a tracer must not
// wait for its tracee).
func startChild(t testing.TB, threads int, mode string) *cchild {
	t.Helper()
	bin := childProgram(t)
	cmd := exec.Command(bin, fmt.Sprint(threads), mode)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	lines := testenv.StartLines(t, cmd, 256, testenv.DropWhenFull)
	c := &cchild{pid: cmd.Process.Pid, stdin: in, lines: lines, syms: map[string]Function{}}
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	syms, err := f.Symbols()
	require.NoError(t, err)
	for _, s := range syms {
		c.syms[s.Name] = Function{Name: s.Name, Addr: s.Value, Size: s.Size}
	}
	c.waitSteady(t, "ready", 1)
	return c
}

// notBad fails the test at a "bad" line: the child found a wrong result.
func notBad(t testing.TB, l string) {
	t.Helper()
	require.False(t, strings.HasPrefix(l, "bad"), "child: %s", l)
}

// waitSteady reads output until n lines in a row are want; a "bad" line
// fails at once.
func (c *cchild) waitSteady(t testing.TB, want string, n int) {
	t.Helper()
	steady := testenv.InARow(want, n)
	c.lines.WaitFor(t, time.Now().Add(30*time.Second), fmt.Sprintf("%d lines %q in a row", n, want), func(l string) bool {
		notBad(t, l)
		return steady(l)
	})
}

// waitPrefix returns the next line starting with prefix.
func (c *cchild) waitPrefix(t testing.TB, prefix string) string {
	t.Helper()
	return c.lines.WaitFor(t, time.Now().Add(30*time.Second), fmt.Sprintf("%q line", prefix), func(l string) bool {
		notBad(t, l)
		return strings.HasPrefix(l, prefix)
	})
}

func attachChild(t testing.TB, c *cchild) *Target {
	t.Helper()
	tg, err := AttachLinux(context.Background(), c.pid)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tg.Close() })
	return tg
}

// state is what must be identical before a commit and after its rollback:
// the code of every function of the child and its memory map.
func state(t testing.TB, tg *Target, c *cchild) (map[string][]byte, string) {
	t.Helper()
	code := map[string][]byte{}
	for _, n := range []string{"value", "value2", "compute", "hook_compute", "spin", "hook_spin"} {
		f := c.syms[n]
		b, err := tg.Read(f.Addr, int(f.Size))
		require.NoError(t, err)
		code[n] = b
	}
	return code, strings.Join(mapsLines(t, c.pid), "\n")
}

func mapsLines(t testing.TB, pid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	require.NoError(t, err)
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		fs := strings.Fields(l)
		require.False(t, len(fs) > 1 && fs[1][1] == 'w' && fs[1][2] == 'x', "writable+executable mapping: %s", l)
		out = append(out, l)
	}
	return out
}

// TestPtraceCommitRollback: a redirect and a detour committed into a child
// with several threads calling both functions: new results, then after the
// rollback old results, with code bytes and memory map identical.
func TestPtraceCommitRollback(t *testing.T) {
	c := startChild(t, 4, "loop")
	tg := attachChild(t, c)
	ctx := context.Background()
	c.waitSteady(t, "1 4", 8)
	code0, maps0 := state(t, tg, c)
	for round := 0; round < 3; round++ {
		tx := tg.Begin(Options{Strict: round == 2})
		require.NoError(t, tx.Redirect(c.syms["value"], c.syms["value2"].Addr))
		tramp, err := tx.Detour(c.syms["compute"], c.syms["hook_compute"].Addr)
		require.NoError(t, err)
		ptr := make([]byte, 8)
		binary.LittleEndian.PutUint64(ptr, tramp)
		require.NoError(t, tg.Write(c.syms["orig_compute"].Addr, ptr))
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		a, err := tx.Commit(cctx)
		cancel()
		require.NoError(t, err)
		t.Logf("round %d: pause %v, %d attempts", round, a.Pause, a.Attempts)
		c.waitSteady(t, "2 1004", 8)
		mapsLines(t, c.pid) // no W+X page while applied
		require.NoError(t, a.Rollback(ctx))
		c.waitSteady(t, "1 4", 8)
		if round == 2 {
			// Nothing calls the trampoline any more: free it.
			require.NoError(t, tg.FreeRetired())
		}
		code1, maps1 := state(t, tg, c)
		if round < 2 {
			// The retired trampoline is the only difference.
			require.Len(t, strings.Split(maps1, "\n"), len(strings.Split(maps0, "\n"))+1)
			require.Equal(t, code0, code1)
			continue
		}
		require.Equal(t, code0, code1)
		require.Equal(t, maps0, maps1, "protections and mappings identical, trampoline freed")
	}
}

// parking is a back-end whose first Stop parks one thread at pc (a real
// SetPC in the child) before reporting it: the commit finds that thread
// stopped inside the bytes it would overwrite.
type parking struct {
	proc.Process
	tid   int
	pc    uint64
	lo    uint64 // the thread to park is the one whose PC is in [lo, hi)
	hi    uint64
	done  bool
	found bool
}

func (p *parking) Stop(ctx context.Context) ([]proc.Thread, error) {
	for tries := 0; ; tries++ {
		th, err := p.Process.Stop(ctx)
		if err != nil || p.done {
			return th, err
		}
		for i := range th {
			if th[i].PC >= p.lo && th[i].PC < p.hi {
				// Moving within spin keeps its stack as it is.
				if err := p.Process.SetPC(th[i].ID, p.pc); err != nil {
					return th, err
				}
				th[i].PC = p.pc
				p.tid, p.found, p.done = th[i].ID, true, true
				return th, nil
			}
		}
		if tries == 10000 {
			return th, nil // give up: the test sees found == false
		}
		if err := p.Process.Resume(); err != nil {
			return nil, err
		}
	}
}

// TestPtraceParkedEveryBoundary: a thread really stopped at each instruction
// boundary of spin's bytes to overwrite. The detour moves it into the
// trampoline and it completes correctly (it keeps counting, reaches the
// hook on its next round, and returns when told); a redirect retries and
// then names thread and function.
func TestPtraceParkedEveryBoundary(t *testing.T) {
	childProgram(t)
	probe := startChild(t, 1, "loop")
	spinFn := probe.syms["spin"]
	code := make([]byte, spinFn.Size)
	f, err := elf.Open(childBin)
	require.NoError(t, err)
	text := f.Section(".text")
	_, err = text.ReadAt(code, int64(spinFn.Addr-text.Addr))
	require.NoError(t, err)
	f.Close()
	d, err := trampoline.NewDetour(tg0Arch, spinFn.Addr, code, probe.syms["hook_spin"].Addr, 0x7000_0000, &trampoline.Options{Function: code, FunctionAddr: spinFn.Addr})
	require.NoError(t, err)
	for _, b := range d.Boundaries {
		if b.Old == 0 {
			continue
		}
		t.Run(fmt.Sprintf("detour+%d", b.Old), func(t *testing.T) {
			c := startChild(t, 1, "spin")
			raw, err := AttachLinux(context.Background(), c.pid)
			require.NoError(t, err)
			pk := &parking{Process: raw.p, pc: spinFn.Addr + uint64(b.Old), lo: spinFn.Addr, hi: spinFn.Addr + spinFn.Size}
			tg := newTarget(pk)
			t.Cleanup(func() { _ = tg.Close() })
			code0, _ := state(t, tg, c)
			tx := tg.Begin(Options{})
			tramp, err := tx.Detour(spinFn, c.syms["hook_spin"].Addr)
			require.NoError(t, err)
			ptr := make([]byte, 8)
			binary.LittleEndian.PutUint64(ptr, tramp)
			require.NoError(t, tg.Write(c.syms["orig_spin"].Addr, ptr))
			a, err := tx.Commit(context.Background())
			require.NoError(t, err)
			require.True(t, pk.found, "the spinner was parked")
			// Let it run, then tell it to return.
			time.Sleep(20 * time.Millisecond)
			_, err = c.stdin.Write([]byte{1})
			require.NoError(t, err)
			line := c.waitPrefix(t, "spun")
			var hooked, spins int
			_, err = fmt.Sscanf(line, "spun %d %d", &hooked, &spins)
			require.NoError(t, err)
			require.Positive(t, hooked, "the moved thread reached the hook on a later call")
			require.Greater(t, spins, hooked)
			require.NoError(t, a.Rollback(context.Background()))
			code1, _ := state(t, tg, c)
			require.Equal(t, code0, code1)
			c.waitSteady(t, "1 4", 4)
		})
	}
	for _, b := range d.Boundaries {
		if b.Old == 0 || b.Old >= 5 {
			continue
		}
		t.Run(fmt.Sprintf("redirect+%d", b.Old), func(t *testing.T) {
			c := startChild(t, 1, "spin")
			raw, err := AttachLinux(context.Background(), c.pid)
			require.NoError(t, err)
			// Park on every stop: the thread stays in the way.
			pk := &parking{Process: raw.p, pc: spinFn.Addr + uint64(b.Old), lo: spinFn.Addr, hi: spinFn.Addr + spinFn.Size}
			tg := newTarget(&alwaysParking{pk})
			t.Cleanup(func() { _ = tg.Close() })
			code0, _ := state(t, tg, c)
			tx := tg.Begin(Options{})
			require.NoError(t, tx.Redirect(spinFn, c.syms["hook_spin"].Addr))
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			_, err = tx.Commit(ctx)
			var ae *verify.ActiveThreadError
			require.ErrorAs(t, err, &ae)
			require.ErrorIs(t, err, ErrBusy)
			require.Equal(t, pk.tid, ae.TID)
			require.Equal(t, "spin", ae.Function)
			code1, _ := state(t, tg, c)
			require.Equal(t, code0, code1)
			_, err = c.stdin.Write([]byte{1})
			require.NoError(t, err)
			line := c.waitPrefix(t, "spun")
			require.True(t, pk.found)
			require.True(t, strings.HasPrefix(line, "spun 0 "), line)
		})
	}
}

// alwaysParking parks the thread at every stop.
type alwaysParking struct{ *parking }

func (a *alwaysParking) Stop(ctx context.Context) ([]proc.Thread, error) {
	a.done = false
	a.lo, a.hi = min(a.lo, a.pc), max(a.hi, a.pc+1)
	return a.parking.Stop(ctx)
}

// TestPtraceHeldBySelf: a process this test process has already attached
// (another Target of ours) is held, not forbidden. AttachLinux says so at
// once, even with no deadline: waiting could be waiting for oneself. (A
// holder in another process is waited for.)
func TestPtraceHeldBySelf(t *testing.T) {
	c := startChild(t, 1, "loop")
	tg := attachChild(t, c)
	_, err := AttachLinux(context.Background(), c.pid)
	require.ErrorIs(t, err, ErrHeld)
	require.NotErrorIs(t, err, ErrPermission)
	var held *HeldError
	require.ErrorAs(t, err, &held)
	require.True(t, held.Self)
	require.Equal(t, os.Getpid(), held.HolderPID)
	require.Contains(t, err.Error(), fmt.Sprint(c.pid))
	// Once the first Target lets go, attaching works.
	require.NoError(t, tg.Close())
	attachChild(t, c)
}

// TestPtraceStress: 8 threads call value() and compute() in a tight loop
// while commits and rollbacks alternate; the child checks every result.
func TestPtraceStress(t *testing.T) {
	cycles := 10000
	if testing.Short() {
		cycles = 200
	}
	c := startChild(t, 8, "busy")
	tg := attachChild(t, c)
	ctx := context.Background()
	var pause time.Duration
	attempts := 0
	for i := 0; i < cycles; i++ {
		tx := tg.Begin(Options{})
		require.NoError(t, tx.Redirect(c.syms["value"], c.syms["value2"].Addr))
		tramp, err := tx.Detour(c.syms["compute"], c.syms["hook_compute"].Addr)
		require.NoError(t, err)
		ptr := make([]byte, 8)
		binary.LittleEndian.PutUint64(ptr, tramp)
		require.NoError(t, tg.Write(c.syms["orig_compute"].Addr, ptr))
		a, err := tx.Commit(ctx)
		if err != nil {
			t.Fatalf("cycle %d: %v; child said: %q", i, err, drain(c))
		}
		pause += a.Pause
		attempts += a.Attempts
		if err := a.Rollback(ctx); err != nil {
			t.Fatalf("cycle %d: rollback: %v; child said: %q", i, err, drain(c))
		}
	}
	// The child is alive and still checking: a bad result would have made
	// it print "bad" and exit.
	c.waitSteady(t, "1 4", 8)
	t.Logf("%d commit/rollback cycles (a redirect and a detour each), 8 busy threads: mean pause %v, %d stops for %d commits", cycles, pause/time.Duration(cycles), attempts, cycles)
}

const tg0Arch = trampoline.AMD64

// drain returns what the child printed last (after it died).
func drain(c *cchild) []string {
	var out []string
	timeout := time.After(2 * time.Second)
	for {
		select {
		case l, ok := <-c.lines.Chan():
			if !ok {
				return out
			}
			if len(out) > 5 {
				out = out[1:]
			}
			out = append(out, l)
		case <-timeout:
			return out
		}
	}
}

// manyChild builds the child with n more functions f0..f(n-1) (each
// "mov eax, i; ret") for the pause benchmark.
func manyChild(b *testing.B, n int) (string, map[string]Function) {
	b.Helper()
	needPtrace(b)
	gcc := testenv.NeedHostTool(b, "gcc")
	src, err := os.ReadFile("testdata/child.c")
	if err != nil {
		b.Fatal(err)
	}
	var sb strings.Builder
	sb.Write(src)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, "__attribute__((noinline, noipa, used)) int f%d(void) { return %d; }\n", i, i)
	}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "many.c"), []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	bin := filepath.Join(dir, "many")
	if out, err := exec.Command(gcc, "-O1", "-fcf-protection=none", "-no-pie", "-pthread", "-o", bin, filepath.Join(dir, "many.c")).CombinedOutput(); err != nil {
		b.Fatalf("gcc: %v: %s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		b.Fatal(err)
	}
	m := map[string]Function{}
	for _, s := range syms {
		m[s.Name] = Function{Name: s.Name, Addr: s.Value, Size: s.Size}
	}
	return bin, m
}

// BenchmarkCommitPtrace: how long the child's threads stay stopped for a
// commit of 1/100/1000 redirections, with 1 and 8 threads calling value()
// in a loop (pause-µs/commit); ns/op is a whole commit plus its rollback.
func BenchmarkCommitPtrace(b *testing.B) {
	bin, syms := manyChild(b, 1000)
	for _, nf := range []int{1, 100, 1000} {
		for _, nt := range []int{1, 8} {
			b.Run(fmt.Sprintf("funcs=%d/threads=%d", nf, nt), func(b *testing.B) {
				cmd := exec.Command(bin, fmt.Sprint(nt), "loop")
				out, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				go func() { _, _ = io.Copy(io.Discard, out) }()
				time.Sleep(50 * time.Millisecond)
				tg, err := AttachLinux(context.Background(), cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = tg.Close() })
				fs := make([]Function, nf)
				for f := range fs {
					fs[f] = syms[fmt.Sprintf("f%d", f)]
				}
				benchCommit(b, tg, fs, syms["value2"].Addr)
			})
		}
	}
}
