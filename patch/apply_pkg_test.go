//go:build (linux && amd64) || (windows && amd64)

package patch_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// fixturePackage is a package built from a fixture pair, the way an operator
// makes one: diff, Build, Sign, Marshal; then loaded back with the key.
type fixturePackage struct {
	old  *image.Image
	data []byte // the signed file
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	p    *pkg.Package // Load(data)
}

func buildFixturePackage(t testing.TB, v1, v2 string, opts pkg.BuildOptions) *fixturePackage {
	t.Helper()
	old, err := image.Open(fixtures.Path(t, v1))
	require.NoError(t, err)
	nw, err := image.Open(fixtures.Path(t, v2))
	require.NoError(t, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(t, err)
	if opts.Module == "" {
		opts.Module = v1
	}
	p, refused, err := pkg.Build(old, nw, rep, opts)
	require.NoError(t, err)
	require.Empty(t, refused)
	pub, priv, err := pkg.GenerateKey(rand.Reader)
	require.NoError(t, err)
	require.NoError(t, p.Sign(priv))
	data, err := p.Marshal()
	require.NoError(t, err)
	loaded, err := pkg.Load(data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	return &fixturePackage{old: old, data: data, pub: pub, priv: priv, p: loaded}
}

// lineReader delivers every line a fixture program prints, parsed.
type lineReader struct {
	lines *testenv.Lines
}

// startLines starts a fixture program and reads every line it prints (the
// buffer holds minutes of them: none is dropped). Its Cleanup, registered
// now, kills and waits for the program after the Cleanups registered later
// (a target's Close: a tracer must not wait for its tracee).
func startLines(t testing.TB, cmd *exec.Cmd) *lineReader {
	t.Helper()
	return &lineReader{lines: testenv.StartLines(t, cmd, 1<<16, testenv.BlockWhenFull)}
}

// next returns the next line; the bound is a hang guard (Wine can be slow),
// not a timing assertion.
func (lr *lineReader) next(t testing.TB) fixtures.Line {
	t.Helper()
	s, ok := lr.lines.Next(t, time.Now().Add(2*time.Minute))
	require.True(t, ok, "the fixture program stopped printing")
	l, err := fixtures.ParseLine(s)
	require.NoError(t, err)
	return l
}

// modelChecker checks every line a fixture program prints against
// fixtures.Model, in order: the counter goes up by one each line, the pid
// stays, and each line is the model's for the current version. At a switch
// the one line printed while the switch happened may mix both versions
// field by field; the state is then taken from it.
type modelChecker struct {
	pid      int64
	last     int64
	m        fixtures.Model
	anyGreet bool // a foreign hook on greeting() is (or was just) live
	lines    int
}

func newModelChecker() *modelChecker {
	return &modelChecker{pid: -1, last: -1, m: fixtures.Model{Version: "v1"}}
}

// feed checks l and reports which version it matched ("v1", "v2" or
// "mixed").
func (c *modelChecker) feed(t testing.TB, l fixtures.Line) string {
	t.Helper()
	c.lines++
	if c.pid < 0 {
		c.pid = l.PID
	}
	require.Equal(t, c.pid, l.PID, "pid changed: %s", l)
	if c.last >= 0 {
		require.Equal(t, c.last+1, l.N, "counter did not keep counting: %s", l)
	} else {
		require.Zero(t, l.N, "first line")
	}
	c.last = l.N
	v1, v2 := c.m, c.m
	v1.Version, v2.Version = "v1", "v2"
	w1, w2 := v1.Next(l.N), v2.Next(l.N)
	if c.anyGreet {
		w1.Greet, w2.Greet = l.Greet, l.Greet
	}
	w1.PID, w2.PID = l.PID, l.PID
	switch {
	case l == w1 && (l != w2 || c.m.Version == "v1"):
		c.m = v1
		return "v1"
	case l == w2:
		c.m = v2
		return "v2"
	}
	// A line printed while the entries switched: each field is one
	// version's.
	for _, k := range []string{"greet", "leaf", "zero", "slot", "rec", "total", "hits", "scale", "disp", "fib", "moved", "callee", "label", "class"} {
		got, _ := l.Field(k)
		a, _ := w1.Field(k)
		b, _ := w2.Field(k)
		require.True(t, got == a || got == b, "line %s: field %s=%s is neither v1's %s nor v2's %s\nv1: %s\nv2: %s", l, k, got, a, b, w1, w2)
	}
	c.m.Total, c.m.Hits = l.Total, l.Hits
	return "mixed"
}

// until feeds lines until one matches version want, then requires n more
// lines of that version; at most one mixed line may come before.
func (c *modelChecker) until(t testing.TB, lr *lineReader, from, want string, n int) {
	t.Helper()
	mixed := 0
	for seen := 0; ; seen++ {
		// A bound on lines (a minute of them at 20 ms), so that a switch
		// that never comes fails instead of running the program out.
		require.Less(t, seen, 3000, "still %s after 3000 lines", from)
		got := c.feed(t, lr.next(t))
		if got == want {
			break
		}
		if got == "mixed" {
			mixed++
			require.LessOrEqual(t, mixed, 1, "more than one mixed line switching to %s", want)
			continue
		}
		require.Equal(t, from, got, "switching from %s to %s", from, want)
	}
	for range n {
		require.Equal(t, want, c.feed(t, lr.next(t)))
	}
}

// drain feeds every line already read (without waiting).
func (c *modelChecker) drain(t testing.TB, lr *lineReader, want string) {
	t.Helper()
	for {
		select {
		case s, ok := <-lr.lines.Chan():
			if !ok {
				return
			}
			l, err := fixtures.ParseLine(s)
			require.NoError(t, err)
			require.Equal(t, want, c.feed(t, l))
		default:
			return
		}
	}
}

// BenchmarkApplyBuild is the operator's side for a fixture pair: open both
// builds, diff, Build, Sign and Marshal.
func BenchmarkApplyBuild(b *testing.B) {
	for _, pair := range [][2]string{{"c-v1-amd64.elf", "c-v2-amd64.elf"}, {"c-v1-amd64.exe", "c-v2-amd64.exe"}} {
		b.Run(pair[0], func(b *testing.B) {
			v1, v2 := fixtures.Path(b, pair[0]), fixtures.Path(b, pair[1])
			_, priv, err := pkg.GenerateKey(rand.Reader)
			require.NoError(b, err)
			var size int
			for b.Loop() {
				old, err := image.Open(v1)
				require.NoError(b, err)
				nw, err := image.Open(v2)
				require.NoError(b, err)
				rep, err := diff.Compare(old, nw, nil)
				require.NoError(b, err)
				p, _, err := pkg.Build(old, nw, rep, pkg.BuildOptions{Module: pair[0]})
				require.NoError(b, err)
				require.NoError(b, p.Sign(priv))
				data, err := p.Marshal()
				require.NoError(b, err)
				size = len(data)
			}
			b.ReportMetric(float64(size), "pkg-bytes")
		})
	}
}

func functionRVA(t testing.TB, img *image.Image, name string) *image.Function {
	t.Helper()
	f, ok := img.FunctionByName(name)
	require.True(t, ok, "no function %s", name)
	return f
}

// hookedRefusal: another tool redirects greeting() (which the package
// replaces) to label(), so greet prints "odd" or "even"; Apply must refuse
// with a pre-image error naming greeting and change nothing (snap before
// and after); then the foreign hook is rolled back and greet is v1's again.
func hookedRefusal(t *testing.T, ctx context.Context, tgt *patch.Target, base uint64, fp *fixturePackage, chk *modelChecker, lr *lineReader, snap func() any) {
	t.Helper()
	greet := functionRVA(t, fp.old, "greeting")
	label := functionRVA(t, fp.old, "label")
	hook := tgt.Begin(patch.Options{})
	require.NoError(t, hook.Redirect(patch.Function{Name: "greeting", Addr: base + uint64(greet.RVA), Size: uint64(greet.Size)}, base+uint64(label.RVA)))
	hooked, err := hook.Commit(ctx)
	require.NoError(t, err)
	chk.drain(t, lr, "v1")
	chk.anyGreet = true
	for l := lr.next(t); ; l = lr.next(t) {
		require.Equal(t, "v1", chk.feed(t, l))
		if l.Greet == "odd" || l.Greet == "even" {
			break // the foreign hook is live
		}
	}
	mid := snap()
	_, err = patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	var pe *verify.PreImageError
	require.ErrorAs(t, err, &pe, "%v", err)
	require.Equal(t, "greeting", pe.Symbol)
	require.Equal(t, base+uint64(greet.RVA), pe.Addr)
	require.Equal(t, byte(0xe9), pe.Got[0])
	require.Equal(t, mid, snap(), "Apply refused but changed the process")
	require.NoError(t, hooked.Rollback(ctx))
	for l := lr.next(t); ; l = lr.next(t) {
		require.Equal(t, "v1", chk.feed(t, l))
		if l.Greet == "hello from v1" {
			break
		}
	}
	chk.anyGreet = false
}

// revertFromAnotherAgent runs this test binary again as a second agent
// process (TestApplyAgentHelper) that reverts fp in process pid, knowing
// only the package file, the trusted key and what the process records.
func revertFromAnotherAgent(t *testing.T, pid int, fp *fixturePackage) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "fix.hpk")
	require.NoError(t, os.WriteFile(file, fp.data, 0o600))
	agent := exec.Command(os.Args[0], "-test.run=^TestApplyAgentHelper$", "-test.v")
	agent.Env = append(os.Environ(), agentEnv("HOTPATCH_AGENT", pid, file, fp.pub)...)
	out, err := agent.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), fmt.Sprintf("reverted sequence %d", fp.p.Sequence), "%s", out)
}

// agentEnv is the environment that hands an agent process (a test helper
// run as a separate process) the target pid, the package file and the
// trusted key, in variables named PREFIX_PID, PREFIX_PKG and PREFIX_KEY.
func agentEnv(prefix string, pid int, file string, pub ed25519.PublicKey) []string {
	return []string{prefix + "_PID=" + strconv.Itoa(pid), prefix + "_PKG=" + file,
		prefix + "_KEY=" + strings.TrimSpace(string(pkg.MarshalPublicKeyText(pub)))}
}

// agentFromEnv is the agent side of agentEnv: the pid and the package, its
// signature checked. Run as an ordinary test, it skips saying why.
func agentFromEnv(t *testing.T, prefix, skip string) (int, *pkg.Package) {
	pidStr := os.Getenv(prefix + "_PID")
	if pidStr == "" {
		t.Skip(skip)
	}
	pid, err := strconv.Atoi(pidStr)
	require.NoError(t, err)
	data, err := os.ReadFile(os.Getenv(prefix + "_PKG"))
	require.NoError(t, err)
	pub, err := pkg.ParsePublicKey([]byte(os.Getenv(prefix + "_KEY")))
	require.NoError(t, err)
	p, err := pkg.Load(data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	return pid, p
}

// TestApplyAgentHelper is the second agent run of the end-to-end tests:
// a separate process that attaches, loads the package and reverts it.
func TestApplyAgentHelper(t *testing.T) {
	pid, p := agentFromEnv(t, "HOTPATCH_AGENT", "run by the end-to-end tests as a separate agent process")
	tgt, err := openTarget(pid)
	require.NoError(t, err)
	defer tgt.Close()
	_, recs, err := patch.AppliedSet(context.Background(), tgt, p)
	require.NoError(t, err)
	require.Len(t, recs, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = patch.Revert(ctx, tgt, p, patch.ApplyOptions{})
	require.NoError(t, err)
	fmt.Printf("reverted sequence %d\n", recs[0].Sequence)
}
