package ptrace

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// A /proc/PID/maps as a 6.x kernel prints it (PIE program, libc, a path
// with spaces, a deleted file, anonymous memory, vdso, stack, vsyscall).
const sampleMaps = `55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 1234                       /tmp/x/threads
55d0c0a01000-55d0c0a02000 r-xp 00001000 fd:01 1234                       /tmp/x/threads
55d0c0a02000-55d0c0a03000 r--p 00002000 fd:01 1234                       /tmp/x/threads
55d0c0a03000-55d0c0a04000 rw-p 00002000 fd:01 1234                       /tmp/x/threads
55d0c1000000-55d0c1021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000001000 r--s 00000000 fd:01 99                         /usr/lib/locale/data
7f1000000000-7f1000028000 r--p 00000000 fd:01 777                        /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000028000-7f10001bd000 r-xp 00028000 fd:01 777                        /usr/lib/x86_64-linux-gnu/libc.so.6
7f10001bd000-7f1000215000 r--p 001bd000 fd:01 777                        /usr/lib/x86_64-linux-gnu/libc.so.6
7f1000300000-7f1000301000 r-xp 00000000 fd:01 55                         /opt/my dir/lib x.so (deleted)
7f1000400000-7f1000402000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
7ffd00100000-7ffd00102000 r-xp 00000000 00:00 0                          [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
`

func TestParseMaps(t *testing.T) {
	maps, err := parseMaps([]byte(sampleMaps))
	require.NoError(t, err)
	require.Len(t, maps, 14)
	require.Equal(t, mapping{Start: 0x55d0c0a01000, End: 0x55d0c0a02000, Prot: proc.ProtRead | proc.ProtExec, Offset: 0x1000, Path: "/tmp/x/threads"}, maps[1])
	require.Equal(t, mapping{Start: 0x7f0000000000, End: 0x7f0000001000, Prot: proc.ProtRead, Shared: true, Path: "/usr/lib/locale/data"}, maps[5])
	require.Equal(t, "/opt/my dir/lib x.so (deleted)", maps[9].Path)
	require.Equal(t, "", maps[10].Path)
	require.Equal(t, proc.ProtExec, maps[13].Prot)

	for _, bad := range []string{
		"55d0c0a00000 r--p 00000000 fd:01 1234",
		"zz-55d0c0a01000 r--p 00000000 fd:01 1234",
		"2000-1000 r--p 00000000 fd:01 1234",
		"1000-2000 r--p 0000zz00 fd:01 1234",
		"1000-2000 rw 00000000 fd:01 1234",
		"1000-2000 r--p",
	} {
		_, err := parseMaps([]byte(bad + "\n"))
		require.Error(t, err, bad)
	}
}

func TestFind(t *testing.T) {
	maps, err := parseMaps([]byte(sampleMaps))
	require.NoError(t, err)
	for _, tc := range []struct {
		addr uint64
		ok   bool
		path string
	}{
		{0x55d0c0a00000, true, "/tmp/x/threads"},
		{0x55d0c0a01fff, true, "/tmp/x/threads"},
		{0x55d0c0a04000, false, ""},
		{0x1000, false, ""},
		{0x7ffd00100010, true, "[vdso]"},
		{0xffffffffff600000, true, "[vsyscall]"},
		{0xffffffffffffffff, false, ""},
	} {
		m, ok := find(maps, tc.addr)
		require.Equal(t, tc.ok, ok, "%#x", tc.addr)
		require.Equal(t, tc.path, m.Path, "%#x", tc.addr)
	}
}

func TestModules(t *testing.T) {
	maps, err := parseMaps([]byte(sampleMaps))
	require.NoError(t, err)
	require.Equal(t, []proc.Module{
		{Name: "threads", Path: "/tmp/x/threads", Base: 0x55d0c0a00000, Size: 0x4000},
		{Name: "libc.so.6", Path: "/usr/lib/x86_64-linux-gnu/libc.so.6", Base: 0x7f1000000000, Size: 0x215000},
		{Name: "lib x.so", Path: "/opt/my dir/lib x.so", Base: 0x7f1000300000, Size: 0x1000},
	}, modules(maps), "the data file, anonymous memory and [vdso] are not modules")
}

func TestCandidates(t *testing.T) {
	const page = 0x1000
	maps, err := parseMaps([]byte(sampleMaps))
	require.NoError(t, err)
	const top = 1<<47 - page
	for _, tc := range []struct {
		name              string
		near, size, reach uint64
		want              []uint64 // the first candidates, nearest first
		none              bool
	}{
		{name: "near the program: just below it, then above its data",
			near: 0x55d0c0a01000, size: page, reach: 1<<31 - 1,
			want: []uint64{0x55d0c09ff000, 0x55d0c0a04000}},
		{name: "inside a gap: at near itself",
			near: 0x7f1000250123, size: 2 * page, reach: 1<<31 - 1,
			want: []uint64{0x7f1000250000}},
		{name: "no reach", near: 0x55d0c0a01000, size: page, reach: 0, none: true},
		{name: "larger than every gap in reach", near: 0x55d0c0a01000, size: 1 << 40, reach: 1<<31 - 1, none: true},
		{name: "not into the stack's growth room",
			near: 0x7ffcfff00000, size: page, reach: 1 << 20,
			none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := candidates(maps, tc.near, tc.size, tc.reach, top, page)
			if tc.none {
				require.Empty(t, got)
				return
			}
			require.GreaterOrEqual(t, len(got), len(tc.want))
			require.Equal(t, tc.want, got[:len(tc.want)])
			for _, a := range got {
				require.Zero(t, a%page)
				require.True(t, within(tc.near, a, tc.size, tc.reach), "%#x", a)
				for _, m := range maps {
					require.False(t, a < m.End && m.Start < a+tc.size, "%#x overlaps %+v", a, m)
				}
			}
		})
	}
}
