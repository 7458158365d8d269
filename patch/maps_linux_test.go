//go:build linux

package patch_test

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// noWriteExec fails when any mapping of process pid is writable and
// executable at once.
func noWriteExec(t testing.TB, pid int, _ uint64) {
	t.Helper()
	for _, l := range mapsLines(t, pid) {
		fs := strings.Fields(l)
		require.False(t, len(fs) > 1 && fs[1][1] == 'w' && fs[1][2] == 'x', "writable+executable mapping: %s", l)
	}
}

// mapsLines returns /proc/PID/maps.
func mapsLines(t testing.TB, pid int) []string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	require.NoError(t, err)
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	require.NoError(t, sc.Err())
	return out
}
