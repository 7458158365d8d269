package ptrace

import (
	"bufio"
	"bytes"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// mapping is one line of /proc/PID/maps.
type mapping struct {
	Start, End uint64
	Prot       proc.Prot
	Shared     bool
	Offset     uint64
	Path       string // file path, "[vdso]", "[stack]", or "" for anonymous memory
}

// parseMaps parses the text of /proc/PID/maps. Lines are sorted by address
// (the kernel prints them so); a malformed line is an error naming it.
func parseMaps(text []byte) ([]mapping, error) {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		m, err := parseMapsLine(line)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

// parseMapsLine parses "start-end perms offset dev inode   path".
func parseMapsLine(line string) (mapping, error) {
	bad := func(why string) (mapping, error) {
		return mapping{}, fmt.Errorf("ptrace: malformed maps line %q: %s", line, why)
	}
	f := strings.Fields(line)
	if len(f) < 5 {
		return bad("fewer than 5 fields")
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return bad("no range")
	}
	var m mapping
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return bad("start")
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil || m.End < m.Start {
		return bad("end")
	}
	perms := f[1]
	if len(perms) != 4 {
		return bad("perms")
	}
	if perms[0] == 'r' {
		m.Prot |= proc.ProtRead
	}
	if perms[1] == 'w' {
		m.Prot |= proc.ProtWrite
	}
	if perms[2] == 'x' {
		m.Prot |= proc.ProtExec
	}
	m.Shared = perms[3] == 's'
	if m.Offset, err = strconv.ParseUint(f[2], 16, 64); err != nil {
		return bad("offset")
	}
	// The kernel separates the first five fields by one space and pads
	// before the path, which may itself contain spaces.
	if parts := strings.SplitN(line, " ", 6); len(parts) == 6 {
		m.Path = strings.TrimLeft(parts[5], " ")
	}
	return m, nil
}

// find returns the mapping containing addr.
func find(maps []mapping, addr uint64) (mapping, bool) {
	i := sort.Search(len(maps), func(i int) bool { return maps[i].End > addr })
	if i < len(maps) && maps[i].Start <= addr {
		return maps[i], true
	}
	return mapping{}, false
}

// modules groups file-backed mappings by path. A file counts as a module
// when one of its mappings is executable; its base is its lowest mapping of
// file offset 0 (where the ELF header, RVA 0, is) and its size runs to the
// end of its last mapping.
func modules(maps []mapping) []proc.Module {
	type acc struct {
		mod    proc.Module
		lo, hi uint64
		base   bool
		exec   bool
	}
	byPath := map[string]*acc{}
	var order []string
	for _, m := range maps {
		if !strings.HasPrefix(m.Path, "/") {
			continue
		}
		path := strings.TrimSuffix(m.Path, " (deleted)")
		a := byPath[path]
		if a == nil {
			a = &acc{mod: proc.Module{Name: filepath.Base(path), Path: path}, lo: m.Start}
			byPath[path] = a
			order = append(order, path)
		}
		if m.Offset == 0 && !a.base {
			a.mod.Base, a.base = m.Start, true
		}
		a.lo = min(a.lo, m.Start)
		a.hi = max(a.hi, m.End)
		a.exec = a.exec || m.Prot&proc.ProtExec != 0
	}
	var out []proc.Module
	for _, path := range order {
		a := byPath[path]
		if !a.exec {
			continue
		}
		if !a.base {
			a.mod.Base = a.lo
		}
		a.mod.Size = a.hi - a.mod.Base
		out = append(out, a.mod)
	}
	return out
}

func distance(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// within reports whether every byte of [addr, addr+size) lies within reach
// of from (the test a rel32 or B displacement needs at both ends).
func within(from, addr, size, reach uint64) bool {
	return distance(from, addr) <= reach && distance(from, addr+size) <= reach
}

// Address-space limits for placing allocations. Below minAddr sit
// mmap_min_addr and the classic NULL-pointer guard; stackGuard keeps new
// mappings out of the range the main stack grows into (its rlimit is
// usually 8 MiB, RLIMIT_STACK may raise it: we leave twice that).
const (
	minAddr    = 1 << 20
	stackGuard = 16 << 20
)

// candidates lists page-aligned addresses in the free gaps of maps where
// size bytes fit within reach of near, nearest first. maxAddr is the end of
// the user address space. The kernel still has the last word
// (MAP_FIXED_NOREPLACE fails if the target mapped something meanwhile).
func candidates(maps []mapping, near, size, reach, maxAddr, page uint64) []uint64 {
	type gap struct{ lo, hi uint64 }
	var gaps []gap
	prev := uint64(minAddr)
	for _, m := range maps {
		if m.Start >= maxAddr {
			break
		}
		hi := m.Start
		if m.Path == "[stack]" {
			hi = sat(hi, stackGuard)
		}
		if hi > prev {
			gaps = append(gaps, gap{prev, hi})
		}
		prev = max(prev, m.End)
	}
	if maxAddr > prev {
		gaps = append(gaps, gap{prev, maxAddr})
	}
	var out []uint64
	for _, g := range gaps {
		lo := (g.lo + page - 1) &^ (page - 1)
		hi := g.hi &^ (page - 1)
		if hi < lo || hi-lo < size {
			continue
		}
		var a uint64
		switch {
		case near < lo:
			a = lo
		case near >= hi:
			a = hi - size
		default:
			// near lies inside the gap: start at near, or end there when the
			// gap above near is too small.
			a = near &^ (page - 1)
			if a+size > hi {
				a = hi - size
			}
		}
		if within(near, a, size, reach) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return distance(out[i], near) < distance(out[j], near) })
	return out
}

// sat returns a-b, or 0 when b > a.
func sat(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
