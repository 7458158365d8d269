package patch

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
	"github.com/seed3bccf95f/hotpatch/trampoline"
)

// appliedSet is what a target records of the packages applied to one
// module: the records whose entries are live, oldest first.
type appliedSet struct {
	t    *Target
	base uint64
	live []*pkg.AppliedRecord
}

// newest is the highest sequence applied (0: none).
func (s *appliedSet) newest() uint32 {
	if len(s.live) == 0 {
		return 0
	}
	return s.live[len(s.live)-1].Sequence
}

// expected returns the bytes an entry at addr must hold now: the package's
// pre-image with the jumps of applied packages over it (newest last).
func (s *appliedSet) expected(addr uint64, pre []byte) []byte {
	out := append([]byte(nil), pre...)
	for _, r := range s.live {
		for _, f := range r.Functions {
			if s.base+uint64(f.OldRVA) != addr {
				continue
			}
			if jump, err := trampoline.EncodeJump(s.t.arch, addr, f.Entry); err == nil {
				if len(jump) > len(out) {
					out = append(out, make([]byte, len(jump)-len(out))...)
				}
				copy(out, jump)
			}
		}
	}
	return out
}

// originals are the bytes applied packages overwrote, newest first, so
// that the oldest (the module's own bytes) win where they overlap.
func (s *appliedSet) originals() []pkg.Original {
	var out []pkg.Original
	for i := len(s.live) - 1; i >= 0; i-- {
		for _, f := range s.live[i].Functions {
			out = append(out, pkg.Original{RVA: f.OldRVA, Bytes: f.Original})
		}
	}
	return out
}

// regionLister is a back-end that lists its mappings itself (a test
// back-end); others are enumerated per OS (privateRegions).
type regionLister interface {
	Regions() ([]proc.Region, error)
}

// readAppliedSet finds the applied records of module m (loaded at m.Base,
// of the build with codeHash) in the target: every private readable mapping
// within reach of the module that starts with pkg.AppliedMagic and parses
// is a record; those describing m are checked against the live entries,
// newest first (liveSet).
func readAppliedSet(t *Target, m Module, codeHash [32]byte) (*appliedSet, error) {
	lo, hi := recordReach(t, m)
	all, err := scanRecords(t, lo, hi)
	if err != nil {
		return nil, err
	}
	var recs []*pkg.AppliedRecord
	for _, r := range all {
		if r.ModuleBase == m.Base && r.CodeHash == codeHash {
			recs = append(recs, r)
		}
	}
	return liveSet(t, m, recs)
}

// recordReach is the address range [lo, hi) the records of module m may
// start in: patch memory is allocated within near-branch reach of it.
func recordReach(t *Target, m Module) (lo, hi uint64) {
	reach := reachFor(t.arch, 0)
	lo, hi = 0, m.Base+m.Size+reach
	if m.Base > reach {
		lo = m.Base - reach
	}
	if hi < m.Base {
		hi = ^uint64(0)
	}
	return lo, hi
}

// scanRecords parses every applied record that starts a private readable
// mapping beginning in [lo, hi), whatever module it describes.
func scanRecords(t *Target, lo, hi uint64) ([]*pkg.AppliedRecord, error) {
	var starts []uint64
	var err error
	if rl, ok := t.p.(regionLister); ok {
		var regions []proc.Region
		regions, err = rl.Regions()
		for _, r := range regions {
			if r.Base >= lo && r.Base < hi && r.Prot&proc.ProtRead != 0 {
				starts = append(starts, r.Base)
			}
		}
	} else {
		starts, err = t.privateRegions(lo, hi)
	}
	if err != nil {
		return nil, fmt.Errorf("patch: scanning process %d for applied records: %w", t.PID(), err)
	}
	var recs []*pkg.AppliedRecord
	head := make([]byte, pkg.AppliedHeaderSize)
	for _, a := range starts {
		if t.p.ReadAt(head, a) != nil || !bytes.HasPrefix(head, []byte(pkg.AppliedMagic)) {
			continue
		}
		n, err := pkg.AppliedRecordLen(head)
		if err != nil {
			continue
		}
		buf := make([]byte, n)
		if t.p.ReadAt(buf, a) != nil {
			continue
		}
		r, err := pkg.ParseAppliedRecord(buf)
		if err != nil || r.Region != a {
			continue
		}
		recs = append(recs, r)
	}
	return recs, nil
}

// liveSet checks recs (the records of module m for one build) against the
// live entries, newest first. A record whose entries all hold the original
// bytes is stale (a revert that could not free it, a crash before the
// commit) and left out; one partly live is a *RecordError.
func liveSet(t *Target, m Module, recs []*pkg.AppliedRecord) (*appliedSet, error) {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].Sequence < recs[j].Sequence })

	s := &appliedSet{t: t, base: m.Base}
	// Newest first: each live record is undone in a view of the memory
	// before the next older one is checked against it.
	type patchBytes struct {
		addr uint64
		b    []byte
	}
	var undone []patchBytes
	view := func(addr uint64, n int) ([]byte, error) {
		b := make([]byte, n)
		if err := t.p.ReadAt(b, addr); err != nil {
			return nil, err
		}
		for _, u := range undone {
			for i, c := range u.b {
				if a := u.addr + uint64(i); a >= addr && a < addr+uint64(n) {
					b[a-addr] = c
				}
			}
		}
		return b, nil
	}
	var live []*pkg.AppliedRecord
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		nLive, nStale := 0, 0
		var staleRVA uint32
		for _, f := range r.Functions {
			addr := m.Base + uint64(f.OldRVA)
			jump, err := trampoline.EncodeJump(t.arch, addr, f.Entry)
			if err != nil || len(jump) != len(f.Original) {
				return nil, &RecordError{Region: r.Region, Sequence: r.Sequence, RVA: f.OldRVA, Why: "the entry jump does not match the record's original bytes"}
			}
			cur, err := view(addr, len(jump))
			if err != nil {
				return nil, &SiteError{Op: "read", Function: fmt.Sprintf("RVA %#x", f.OldRVA), Addr: addr, Err: err}
			}
			switch {
			case bytes.Equal(cur, jump):
				nLive++
			case bytes.Equal(cur, f.Original):
				if nStale == 0 {
					staleRVA = f.OldRVA
				}
				nStale++
			default:
				return nil, &RecordError{Region: r.Region, Sequence: r.Sequence, RVA: f.OldRVA, Why: fmt.Sprintf("the entry holds % x: neither the jump % x nor the original % x", cur, jump, f.Original)}
			}
		}
		switch {
		case nLive > 0 && nStale > 0:
			return nil, &RecordError{Region: r.Region, Sequence: r.Sequence, RVA: staleRVA, Why: fmt.Sprintf("holds its original bytes while %d other entries of the record are redirected (%d not)", nLive, nStale)}
		case nLive == 0:
			continue // stale
		}
		if len(live) > 0 && live[0].Sequence == r.Sequence {
			return nil, &RecordError{Region: r.Region, Sequence: r.Sequence, Why: fmt.Sprintf("sequence also applied by the record at %#x", live[0].Region)}
		}
		live = append([]*pkg.AppliedRecord{r}, live...)
		for _, f := range r.Functions {
			undone = append(undone, patchBytes{m.Base + uint64(f.OldRVA), f.Original})
		}
	}
	s.live = live
	return s, nil
}
