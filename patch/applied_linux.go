//go:build linux

package patch

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// privateRegions returns the start of every readable anonymous mapping of
// the target that starts in [lo, hi), from /proc/PID/maps (the back-end's
// Query only describes mapped addresses, so it cannot walk the gaps).
func (t *Target) privateRegions(lo, hi uint64) ([]uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", t.PID()))
	if err != nil {
		return nil, err
	}
	return parsePrivateRegions(data, lo, hi), nil
}

// parsePrivateRegions reads /proc/PID/maps lines:
// "start-end perms offset dev inode [path]".
func parsePrivateRegions(data []byte, lo, hi uint64) []uint64 {
	var out []uint64
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || len(f) > 6 || f[4] != "0" || !strings.HasPrefix(f[1], "r") {
			continue // a file mapping, [heap]/[stack]/[vdso], or unreadable
		}
		startHex, _, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err := strconv.ParseUint(startHex, 16, 64)
		if err != nil || start < lo || start >= hi {
			continue
		}
		out = append(out, start)
	}
	return out
}
