//go:build windows && amd64

package patch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// manyChildExe is the committed Windows target of BenchmarkCommitWindows
// (testdata/build.sh): value() called in a loop by N threads, and f000 ..
// f999 to redirect.
const manyChildExe = "manychild.exe"

// manyChildFuncs returns f000 .. f(n-1) of manychild.exe, and value2, at
// their addresses in a process that loaded the image at base. The entries
// come from the image's COFF symbols and .pdata; Expect holds the bytes on
// disk, so the commit's pre-image check compares against the file.
func manyChildFuncs(b testing.TB, img *image.Image, base uint64, n int) ([]Function, uint64) {
	b.Helper()
	fn := func(name string) Function { return manyChildFunc(b, img, base, name) }
	fs := make([]Function, n)
	for i := range fs {
		fs[i] = fn(fmt.Sprintf("f%03d", i))
	}
	return fs, fn("value2").Addr
}

// manyChildFunc is function name of manychild.exe loaded at base (see
// manyChildFuncs).
func manyChildFunc(t testing.TB, img *image.Image, base uint64, name string) Function {
	t.Helper()
	f, ok := img.FunctionByName(name)
	if !ok {
		t.Fatalf("%s: no function %s", manyChildExe, name)
	}
	code, ok := img.Code(f)
	if !ok {
		t.Fatalf("%s: no bytes for %s", manyChildExe, name)
	}
	return Function{Name: name, Addr: base + uint64(f.RVA), Size: uint64(f.Size), Expect: code}
}

// startManyChild runs manychild.exe with nt threads calling value() and
// waits until they all run; the child ends with the test (its stdin
// closes), or when the caller closes stdin.
func startManyChild(b testing.TB, nt int) (*exec.Cmd, io.WriteCloser) {
	b.Helper()
	cmd := exec.Command(filepath.Join("testdata", manyChildExe), fmt.Sprint(nt))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	lines := testenv.StartLines(b, cmd, 16, testenv.BlockWhenFull)
	// A hang guard (Wine can be slow to start a program), not a timing.
	if l, ok := lines.Next(b, time.Now().Add(2*time.Minute)); !ok || l != "ready" {
		b.Fatalf("%s %d: first line %q (ok=%v), want ready", manyChildExe, nt, l, ok)
	}
	return cmd, stdin
}

// manyChildBase is where manychild.exe is loaded in tg.
func manyChildBase(t testing.TB, tg *Target) uint64 {
	t.Helper()
	mods, err := tg.Modules()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if strings.EqualFold(m.Name, manyChildExe) {
			return m.Base
		}
	}
	t.Fatalf("%s not among the child's modules %v", manyChildExe, mods)
	return 0
}

// BenchmarkCommitWindows: how long the Windows back-end keeps a child's
// threads suspended for a commit of 1/100/1000 redirections, with 1 and 8
// threads calling value() in a loop (pause-µs/commit); ns/op is a whole
// commit plus its rollback. Same shape as BenchmarkCommitPtrace.
func BenchmarkCommitWindows(b *testing.B) {
	img, err := image.Open(filepath.Join("testdata", manyChildExe))
	if err != nil {
		b.Fatal(err)
	}
	for _, nf := range []int{1, 100, 1000} {
		for _, nt := range []int{1, 8} {
			b.Run(fmt.Sprintf("funcs=%d/threads=%d", nf, nt), func(b *testing.B) {
				cmd, _ := startManyChild(b, nt)
				tg, err := OpenWindows(cmd.Process.Pid)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = tg.Close() })
				fs, to := manyChildFuncs(b, img, manyChildBase(b, tg), nf)
				benchCommit(b, tg, fs, to)
				// Every rollback restored the entries: the file's bytes are back.
				for _, f := range fs {
					got, err := tg.Read(f.Addr, len(f.Expect))
					if err != nil {
						b.Fatal(err)
					}
					if string(got) != string(f.Expect) {
						b.Fatalf("%s at %#x: % x after rollback, want % x", f.Name, f.Addr, got, f.Expect)
					}
				}
			})
		}
	}
}

// BenchmarkCommitSelfWindows: the same measure for patch.Self on Windows,
// which suspends every other thread of the process (Go's own included) for
// a commit: 1/100/1000 tiny functions (`mov eax, 1000+i; ret`, 16 bytes
// apart) in memory allocated through the back-end, with 1 and 8 goroutines
// locked to OS threads calling f0 in a loop.
func BenchmarkCommitSelfWindows(b *testing.B) {
	if testenv.Emulated() && os.Getenv("HOTPATCH_WINE_SELF") != "1" {
		// Wine 8 intermittently hangs or kills a process that suspends its
		// own Go threads (see TestSelfStress and internal/proc/windows).
		b.Skip("Wine: suspending the own Go threads hangs intermittently; HOTPATCH_WINE_SELF=1 runs it anyway")
	}
	tg, err := Self()
	if err != nil {
		b.Fatal(err)
	}
	const stride = 16
	for _, nf := range []int{1, 100, 1000} {
		for _, nt := range []int{1, 8} {
			b.Run(fmt.Sprintf("funcs=%d/threads=%d", nf, nt), func(b *testing.B) {
				fs, to := selfFuncs(b, tg, nf, stride)
				var stop atomic.Bool
				var bad atomic.Int64
				var wg sync.WaitGroup
				for range nt {
					wg.Add(1)
					go func() {
						defer wg.Done()
						runtime.LockOSThread()
						defer runtime.UnlockOSThread()
						for !stop.Load() {
							// The Windows x64 ABI through SyscallN: the
							// code only sets eax and returns.
							if r, _, _ := syscall.SyscallN(uintptr(fs[0].Addr)); r != 1000 && r != 2 {
								bad.Add(1)
							}
							// A loop of calls into foreign code has no
							// safe point: without a yield sysmon keeps
							// suspending the thread to preempt it, which
							// Wine 8 cannot mix with our own suspension
							// (see TestSelfStopBusyThreads).
							runtime.Gosched()
						}
					}()
				}
				defer func() {
					stop.Store(true)
					wg.Wait()
					if n := bad.Load(); n != 0 {
						b.Errorf("%d calls of f0 returned neither 1000 nor 2", n)
					}
				}()
				benchCommit(b, tg, fs, to)
			})
		}
	}
}

// selfFuncs writes n functions returning 1000+i, stride bytes apart, and
// one returning 2 after them, into executable memory of this process
// allocated through the back-end; freed when the benchmark ends.
func selfFuncs(b *testing.B, tg *Target, n, stride int) ([]Function, uint64) {
	b.Helper()
	size := uint64((n + 1) * stride)
	near := uint64(reflectPC(b))
	mem, err := tg.p.AllocNear(context.Background(), near, size, 1<<31-1, proc.ProtRead|proc.ProtWrite)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tg.p.Free(mem, size) })
	code := make([]byte, size)
	fs := make([]Function, n)
	for i := 0; i <= n; i++ {
		v := uint32(1000 + i)
		if i == n {
			v = 2
		}
		f := code[i*stride : (i+1)*stride]
		copy(f, []byte{0xb8, byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24), 0xc3})
		for j := 6; j < stride; j++ {
			f[j] = 0xcc
		}
		if i < n {
			fs[i] = Function{Name: fmt.Sprintf("f%d", i), Addr: mem + uint64(i*stride), Size: 6}
		}
	}
	if err := tg.p.WriteAt(code, mem); err != nil {
		b.Fatal(err)
	}
	if _, err := tg.p.Protect(mem, size, proc.ProtRead|proc.ProtExec); err != nil {
		b.Fatal(err)
	}
	if err := tg.p.FlushICache(mem, size); err != nil {
		b.Fatal(err)
	}
	return fs, mem + uint64(n*stride)
}

// reflectPC is an address in this program's code, for allocating near it.
func reflectPC(b *testing.B) uintptr {
	pc, _, _, ok := runtime.Caller(0)
	if !ok {
		b.Fatal("runtime.Caller failed")
	}
	return pc
}
