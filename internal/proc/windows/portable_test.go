package winproc

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

func TestPageProt(t *testing.T) {
	for _, tc := range []struct {
		prot proc.Prot
		page uint32
	}{
		{0, pageNoAccess},
		{proc.ProtRead, pageReadOnly},
		{proc.ProtRead | proc.ProtWrite, pageReadWrite},
		{proc.ProtExec, pageExecute},
		{proc.ProtRead | proc.ProtExec, pageExecuteRead},
		{proc.ProtRead | proc.ProtWrite | proc.ProtExec, pageExecuteReadWrite},
	} {
		got, err := pageProt(tc.prot)
		require.NoError(t, err, tc.prot)
		require.Equal(t, tc.page, got, tc.prot)
		require.Equal(t, tc.prot, fromPage(tc.page), tc.prot)
	}
	for _, p := range []proc.Prot{proc.ProtWrite, proc.ProtWrite | proc.ProtExec} {
		_, err := pageProt(p)
		require.ErrorIs(t, err, ErrProtection, p)
	}
	require.Equal(t, proc.ProtRead|proc.ProtWrite, fromPage(pageWriteCopy))
	require.Equal(t, proc.ProtRead|proc.ProtWrite|proc.ProtExec, fromPage(pageExecuteWriteCopy))
	require.Equal(t, proc.ProtRead|proc.ProtExec, fromPage(pageExecuteRead|0x100), "PAGE_GUARD is a modifier")
	require.Equal(t, proc.Prot(0), fromPage(pageNoAccess))
}

// snapshot builds a SystemProcessInformation buffer: one entry per pid with
// its thread ids, laid out as ntdll does on 64-bit Windows.
func snapshot(procs map[uint32][]uint32, order []uint32) []byte {
	var buf []byte
	for i, pid := range order {
		tids := procs[pid]
		e := make([]byte, spiSize+len(tids)*stiSize+16) // +16: image name
		binary.LittleEndian.PutUint32(e[spiThreadCount:], uint32(len(tids)))
		binary.LittleEndian.PutUint64(e[spiPID:], uint64(pid))
		for j, tid := range tids {
			binary.LittleEndian.PutUint64(e[spiSize+j*stiSize+stiTID:], uint64(tid))
			binary.LittleEndian.PutUint64(e[spiSize+j*stiSize+stiTID-8:], uint64(pid))
		}
		if i < len(order)-1 {
			binary.LittleEndian.PutUint32(e[spiNextEntry:], uint32(len(e)))
		}
		buf = append(buf, e...)
	}
	return buf
}

func TestThreadsOf(t *testing.T) {
	procs := map[uint32][]uint32{0: nil, 4: {8, 12}, 1234: {1240, 1300, 4444}, 99: {100}}
	buf := snapshot(procs, []uint32{0, 4, 1234, 99})
	for _, tc := range []struct {
		pid   uint32
		found bool
		want  []uint32
	}{
		{1234, true, []uint32{1240, 1300, 4444}},
		{99, true, []uint32{100}},
		{0, true, nil},
		{7, false, nil},
	} {
		var got []uint32
		found, err := threadsOf(buf, tc.pid, func(tid uint32) { got = append(got, tid) })
		require.NoError(t, err)
		require.Equal(t, tc.found, found, tc.pid)
		require.Equal(t, tc.want, got, tc.pid)
	}
	// Corrupt buffers are errors, never out-of-bounds reads.
	bad := append([]byte(nil), buf...)
	binary.LittleEndian.PutUint32(bad[spiNextEntry:], 8) // next entry inside this one
	_, err := threadsOf(bad, 1234, func(uint32) {})
	require.ErrorIs(t, err, errSnapshotCorrupt)
	bad = append([]byte(nil), buf...)
	binary.LittleEndian.PutUint32(bad[spiThreadCount:], 1<<20) // pid 0 claims a million threads
	_, err = threadsOf(bad, 0, func(uint32) {})
	require.ErrorIs(t, err, errSnapshotCorrupt)
	_, err = threadsOf(buf[:spiSize-1], 1234, func(uint32) {})
	require.ErrorIs(t, err, errSnapshotCorrupt)
	_, err = threadsOf(buf[:len(buf)-17], 99, func(uint32) {})
	require.ErrorIs(t, err, errSnapshotCorrupt)
}

func TestCandidates(t *testing.T) {
	const g = 64 << 10
	const near = 0x1_4000_1530
	const reach = 1<<31 - 1
	for _, tc := range []struct {
		name string
		free []span
		size uint64
		want []uint64
	}{
		{"above and below, nearest first",
			[]span{{0x1_0000_0000, 0x1_3000_0000}, {0x1_4010_0000, 0x2_0000_0000}}, 4096,
			[]uint64{0x1_4010_0000, 0x1_3000_0000 - g}},
		{"unaligned span rounds inward", []span{{0x1_4010_0001, 0x1_4030_0000}}, 4096, []uint64{0x1_4011_0000}},
		{"span too small after alignment", []span{{0x1_4010_0001, 0x1_4010_ff00}}, 4096, nil},
		{"out of reach", []span{{0x2_0000_0000, 0x3_0000_0000}}, 4096, nil},
		{"near inside a free span", []span{{0x1_0000_0000, 0x2_0000_0000}}, 4096, []uint64{0x1_4002_0000 - g}},
		{"span whose end barely fits", []span{{0x1_4010_0000, 0x1_4010_0000 + g}}, g, []uint64{0x1_4010_0000}},
		{"size beyond reach", []span{{0x1_4010_0000, 0x3_0000_0000}}, 1 << 32, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := candidates(tc.free, near, tc.size, reach, g)
			require.Equal(t, tc.want, got)
			for _, a := range got {
				require.Zero(t, a%g)
				require.LessOrEqual(t, dist(a, near), uint64(reach))
				require.LessOrEqual(t, dist(a+tc.size, near), uint64(reach))
			}
		})
	}
}
