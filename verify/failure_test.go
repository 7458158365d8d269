package verify_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/verify"
)

// TestFailureAllocates: every check of a Failure, passing or failing, runs
// without allocating (it is used while the target's threads are
// suspended); only Err, called afterwards, allocates.
func TestFailureAllocates(t *testing.T) {
	want, got := []byte{0x55, 0x48, 0x89, 0xe5, 0x90}, []byte{0xe9, 1, 2, 3, 4}
	ranges := []verify.Range{{Start: 0x1000, End: 0x1005, Function: "f"}}
	inside := []verify.Thread{{ID: 7, PC: 0x2000}, {ID: 8, PC: 0x1002}}
	stack := make([]byte, 64)
	stack[40] = 0x03
	stack[41] = 0x10 // 0x1003: a return address into f
	var f verify.Failure
	for _, tc := range []struct {
		name  string
		check func() bool
		ok    bool
	}{
		{"preimage ok", func() bool { return f.PreImage(0x1000, "f", want, want) }, true},
		{"preimage differs", func() bool { return f.PreImage(0x1000, "f", want, got) }, false},
		{"readback differs", func() bool { return f.Readback(0x1000, "f", want, got) }, false},
		{"activeness ok", func() bool { return f.Activeness(inside[:1], ranges, verify.LinuxAMD64) }, true},
		{"activeness busy", func() bool { return f.Activeness(inside, ranges, verify.LinuxAMD64) }, false},
		{"stack ok", func() bool { return f.StackScan(7, 0x8000, stack[:40], ranges, 8) }, true},
		{"stack busy", func() bool { return f.StackScan(7, 0x8000, stack, ranges, 8) }, false},
		{"protection ok", func() bool {
			return f.Protection(0x1000, verify.ProtRead|verify.ProtExec, verify.ProtRead|verify.ProtExec)
		}, true},
		{"protection changed", func() bool { return f.Protection(0x1000, verify.ProtRead|verify.ProtExec, verify.ProtRead) }, false},
		{"protection wx", func() bool { return f.NoWriteExec(0x1000, verify.ProtRead|verify.ProtWrite|verify.ProtExec) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.Reset()
			require.Equal(t, tc.ok, tc.check())
			require.Equal(t, !tc.ok, f.Failed())
			allocs := testing.AllocsPerRun(100, func() {
				f.Reset()
				tc.check()
			})
			require.Zero(t, allocs)
		})
	}
}

// TestFailureErr: a Failure's error is the one the function of the same
// name returns, and only the first failure is kept.
func TestFailureErr(t *testing.T) {
	want, got := []byte{0x55, 0x48}, []byte{0xe9, 0x48}
	ranges := []verify.Range{{Start: 0x1000, End: 0x1005, Function: "f"}}
	stack := []byte{3, 0x10, 0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		name  string
		check func(f *verify.Failure) bool
		err   error
	}{
		{"preimage", func(f *verify.Failure) bool { return f.PreImage(0x1000, "f", want, got) }, verify.PreImage(0x1000, "f", want, got)},
		{"readback", func(f *verify.Failure) bool { return f.Readback(0x1000, "f", want, got) }, verify.Readback(0x1000, "f", want, got)},
		{"active", func(f *verify.Failure) bool {
			return f.Activeness([]verify.Thread{{ID: 3, PC: 0x1001}}, ranges, verify.ActivenessOptions{})
		}, verify.Activeness([]verify.Thread{{ID: 3, PC: 0x1001}}, ranges, verify.ActivenessOptions{})},
		{"stack", func(f *verify.Failure) bool { return f.StackScan(3, 0x8000, stack, ranges, 8) }, verify.StackScan(3, 0x8000, stack, ranges, 8)},
		{"word size", func(f *verify.Failure) bool { return f.StackScan(3, 0x8000, stack, ranges, 2) }, verify.StackScan(3, 0x8000, stack, ranges, 2)},
		{"protection", func(f *verify.Failure) bool { return f.Protection(0x1000, verify.ProtRead, verify.ProtExec) }, verify.Protection(0x1000, verify.ProtRead, verify.ProtExec)},
		{"wx", func(f *verify.Failure) bool { return f.NoWriteExec(0x1000, verify.ProtWrite|verify.ProtExec) }, verify.NoWriteExec(0x1000, verify.ProtWrite|verify.ProtExec)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, tc.err)
			var f verify.Failure
			require.NoError(t, f.Err())
			require.False(t, tc.check(&f))
			// A second failure does not replace the first.
			require.False(t, f.PreImage(0x9000, "g", []byte{1}, []byte{2}))
			require.Equal(t, tc.err, f.Err())
		})
	}
	// Err copies the bytes: the caller may reuse its buffers afterwards.
	var f verify.Failure
	buf := []byte{0xe9, 0x48}
	f.PreImage(0x1000, "f", want, buf)
	err := f.Err()
	buf[0] = 0
	var pe *verify.PreImageError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, []byte{0xe9, 0x48}, pe.Got)
}
