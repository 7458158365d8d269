package pkg

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// AppliedMagic starts every applied record in a target's memory.
const AppliedMagic = "\x89HPA\r\n\x1a\n"

// AppliedHeaderSize is the fixed header of an applied record: read it first,
// then AppliedRecordLen says how many bytes the whole record has.
const AppliedHeaderSize = 16

// appliedVersion is the applied record's format version.
const appliedVersion = 1

// Bounds of an applied record (it describes a package that loaded within
// DefaultLimits).
const (
	maxAppliedFunctions = 1 << 16
	maxAppliedOriginal  = 64
	maxAppliedSize      = 16 << 20
)

// AppliedRecord is what Apply leaves in the target next to the code it
// writes, so that any later agent run (another process, after a crash) finds
// which packages a process has, and can revert them: see "Applied set" in the
// package documentation.
type AppliedRecord struct {
	// ModuleBase is where the patched module is loaded in the target.
	ModuleBase uint64
	// CodeHash is the package's Base.Identity.CodeHash: the build patched.
	CodeHash [32]byte
	// Sequence and Requires are the package's.
	Sequence uint32
	Requires uint32
	// Package is the SHA-256 of the package file as applied.
	Package [32]byte
	// KeyID is the signer's key ID (zero for an unsigned package).
	KeyID KeyID
	// Region and RegionSize are the patch memory (this record at its start).
	Region     uint64
	RegionSize uint64
	// Functions are the entries redirected, sorted by OldRVA.
	Functions []AppliedFunction
}

// AppliedFunction is one redirected entry.
type AppliedFunction struct {
	OldRVA uint32
	// Entry is the address the entry jump reaches.
	Entry uint64
	// Original is the bytes the entry jump overwrote: what Revert writes back.
	Original []byte
}

// MarshalBinary encodes the record: the header (magic, version, a zero
// reserved word, the body length), the body, and a SHA-256 of header and
// body, which catches a torn or overwritten record (it is not a signature:
// the record lives in a process the agent already controls).
func (a *AppliedRecord) MarshalBinary() ([]byte, error) {
	if len(a.Functions) > maxAppliedFunctions {
		return nil, &LimitError{What: "applied functions", Limit: maxAppliedFunctions, Got: int64(len(a.Functions)), Offset: -1}
	}
	w := &writer{buf: make([]byte, AppliedHeaderSize, 256)}
	copy(w.buf, AppliedMagic)
	binary.LittleEndian.PutUint16(w.buf[8:], appliedVersion)
	w.u64(a.ModuleBase)
	w.raw(a.CodeHash[:])
	w.u32(a.Sequence)
	w.u32(a.Requires)
	w.raw(a.Package[:])
	w.raw(a.KeyID[:])
	w.u64(a.Region)
	w.u64(a.RegionSize)
	w.u32(uint32(len(a.Functions)))
	for i, f := range a.Functions {
		if i > 0 && f.OldRVA <= a.Functions[i-1].OldRVA {
			return nil, &FormatError{Offset: -1, What: fmt.Sprintf("applied function %d not sorted by old RVA", i)}
		}
		if len(f.Original) == 0 || len(f.Original) > maxAppliedOriginal {
			return nil, &FormatError{Offset: -1, What: fmt.Sprintf("applied function %d original of %d bytes", i, len(f.Original))}
		}
		w.u32(f.OldRVA)
		w.u64(f.Entry)
		w.bytes(f.Original)
	}
	if len(w.buf)+sha256.Size > maxAppliedSize {
		return nil, &LimitError{What: "applied record size", Limit: maxAppliedSize, Got: int64(len(w.buf) + sha256.Size), Offset: -1}
	}
	binary.LittleEndian.PutUint32(w.buf[12:], uint32(len(w.buf)-AppliedHeaderSize))
	sum := sha256.Sum256(w.buf)
	return append(w.buf, sum[:]...), nil
}

// AppliedRecordLen checks an applied record's header and returns the size
// of the whole record. Scanning a target, read AppliedHeaderSize bytes at a
// candidate, then that many.
func AppliedRecordLen(header []byte) (int, error) {
	if len(header) < AppliedHeaderSize {
		return 0, &FormatError{Offset: int64(len(header)), What: "applied record header truncated"}
	}
	if !bytes.Equal(header[:8], []byte(AppliedMagic)) {
		return 0, &FormatError{Offset: 0, What: "applied record magic"}
	}
	if v := binary.LittleEndian.Uint16(header[8:]); v != appliedVersion {
		return 0, &VersionError{Got: v}
	}
	if binary.LittleEndian.Uint16(header[10:]) != 0 {
		return 0, &FormatError{Offset: 10, What: "applied record reserved word"}
	}
	n := int64(binary.LittleEndian.Uint32(header[12:])) + AppliedHeaderSize + sha256.Size
	if n > maxAppliedSize {
		return 0, &LimitError{What: "applied record size", Limit: maxAppliedSize, Got: n, Offset: 12}
	}
	return int(n), nil
}

// ParseAppliedRecord decodes a record written by MarshalBinary; data may
// extend past it. Errors are *FormatError, *VersionError or *LimitError.
func ParseAppliedRecord(data []byte) (*AppliedRecord, error) {
	n, err := AppliedRecordLen(data)
	if err != nil {
		return nil, err
	}
	if len(data) < n {
		return nil, &FormatError{Offset: int64(len(data)), What: "applied record truncated"}
	}
	body := data[:n-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], data[n-sha256.Size:n]) {
		return nil, &FormatError{Offset: int64(len(body)), What: "applied record checksum"}
	}
	r := &reader{data: body, off: AppliedHeaderSize}
	a := &AppliedRecord{}
	a.ModuleBase = r.u64("module base")
	copy(a.CodeHash[:], r.take(32, "code hash"))
	a.Sequence = r.u32("sequence")
	a.Requires = r.u32("requires")
	copy(a.Package[:], r.take(32, "package digest"))
	copy(a.KeyID[:], r.take(8, "key ID"))
	a.Region = r.u64("region")
	a.RegionSize = r.u64("region size")
	if cnt := r.count("applied functions", maxAppliedFunctions, 16); cnt > 0 {
		a.Functions = make([]AppliedFunction, cnt)
		for i := range a.Functions {
			f := &a.Functions[i]
			at := r.off
			f.OldRVA = r.u32("old RVA")
			f.Entry = r.u64("entry")
			f.Original = r.bytes("original", maxAppliedOriginal)
			if r.err == nil && (len(f.Original) == 0 || (i > 0 && f.OldRVA <= a.Functions[i-1].OldRVA)) {
				r.fail(at, fmt.Sprintf("applied function %d empty or not sorted", i))
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(body) {
		return nil, &FormatError{Offset: int64(r.off), What: "trailing bytes in the applied record"}
	}
	return a, nil
}
