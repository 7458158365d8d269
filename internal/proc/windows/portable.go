package winproc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Windows page protection constants (winnt.h), declared here so the
// conversions build and are tested on every OS.
const (
	pageNoAccess         = 0x01
	pageReadOnly         = 0x02
	pageReadWrite        = 0x04
	pageWriteCopy        = 0x08
	pageExecute          = 0x10
	pageExecuteRead      = 0x20
	pageExecuteReadWrite = 0x40
	pageExecuteWriteCopy = 0x80
	pageModifiers        = 0x100 | 0x200 | 0x400 // PAGE_GUARD, NOCACHE, WRITECOMBINE
)

// ErrProtection: the protection has no Windows equivalent (write without
// read: Windows has no write-only page).
var ErrProtection = errors.New("winproc: protection not expressible on Windows")

// pageProt converts a proc.Prot to a PAGE_* value.
func pageProt(p proc.Prot) (uint32, error) {
	switch p {
	case 0:
		return pageNoAccess, nil
	case proc.ProtRead:
		return pageReadOnly, nil
	case proc.ProtRead | proc.ProtWrite:
		return pageReadWrite, nil
	case proc.ProtExec:
		return pageExecute, nil
	case proc.ProtRead | proc.ProtExec:
		return pageExecuteRead, nil
	case proc.ProtRead | proc.ProtWrite | proc.ProtExec:
		return pageExecuteReadWrite, nil
	}
	return 0, fmt.Errorf("%w: %s", ErrProtection, p)
}

// fromPage converts a PAGE_* value to proc.Prot. Copy-on-write pages are
// writable; the guard/cache modifiers do not change access.
func fromPage(v uint32) proc.Prot {
	switch v &^ pageModifiers {
	case pageReadOnly:
		return proc.ProtRead
	case pageReadWrite, pageWriteCopy:
		return proc.ProtRead | proc.ProtWrite
	case pageExecute:
		return proc.ProtExec
	case pageExecuteRead:
		return proc.ProtRead | proc.ProtExec
	case pageExecuteReadWrite, pageExecuteWriteCopy:
		return proc.ProtRead | proc.ProtWrite | proc.ProtExec
	}
	return 0
}

// Offsets into ntdll's SYSTEM_PROCESS_INFORMATION / SYSTEM_THREAD_INFORMATION
// on 64-bit Windows (the layout winapi's tests check).
const (
	spiNextEntry   = 0x00
	spiThreadCount = 0x04
	spiPID         = 0x50
	spiSize        = 0x100
	stiSize        = 0x50
	stiTID         = 0x30
)

// errSnapshotCorrupt: NtQuerySystemInformation returned entries that run
// outside the buffer. Never expected from Windows; checked so a bad buffer
// cannot make the parser read out of bounds.
var errSnapshotCorrupt = errors.New("winproc: malformed process snapshot")

// threadsOf calls fn with the id of each thread of pid listed in a
// SystemProcessInformation snapshot, and reports whether pid was listed.
// It does not allocate.
func threadsOf(buf []byte, pid uint32, fn func(tid uint32)) (bool, error) {
	off := 0
	for {
		if off < 0 || off+spiSize > len(buf) {
			return false, errSnapshotCorrupt
		}
		e := buf[off:]
		n := int(binary.LittleEndian.Uint32(e[spiThreadCount:]))
		if binary.LittleEndian.Uint64(e[spiPID:]) == uint64(pid) {
			if n < 0 || spiSize+n*stiSize > len(e) {
				return false, errSnapshotCorrupt
			}
			for i := 0; i < n; i++ {
				fn(uint32(binary.LittleEndian.Uint64(e[spiSize+i*stiSize+stiTID:])))
			}
			return true, nil
		}
		next := int(binary.LittleEndian.Uint32(e[spiNextEntry:]))
		if next == 0 {
			return false, nil
		}
		if next < spiSize {
			return false, errSnapshotCorrupt
		}
		off += next
	}
}

// span is a free address range [lo, hi).
type span struct{ lo, hi uint64 }

func dist(a, b uint64) uint64 {
	if a > b {
		return a - b
	}
	return b - a
}

// candidates returns allocation addresses inside the free spans, aligned to
// gran, such that every byte of [addr, addr+size) lies within reach of near,
// nearest first: per span the aligned address closest to near (its low end
// when the span lies above near, its high end when below).
func candidates(free []span, near, size, reach, gran uint64) []uint64 {
	var out []uint64
	fits := func(a uint64) bool {
		return a+size > a && dist(near, a) <= reach && dist(near, a+size) <= reach
	}
	for _, s := range free {
		lo := (s.lo + gran - 1) &^ (gran - 1)
		if lo < s.lo || s.hi < size || lo > s.hi-size {
			continue
		}
		hi := (s.hi - size) &^ (gran - 1) // highest aligned start that fits
		var a uint64
		switch {
		case near <= lo:
			a = lo
		case near >= hi:
			a = hi
		default:
			a = (near + gran - 1) &^ (gran - 1) // just above near
			if a > hi {
				a = hi
			}
		}
		if fits(a) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return dist(near, out[i]) < dist(near, out[j]) })
	return out
}
