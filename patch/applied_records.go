package patch

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// ModuleRecords is one module of a target with the records of the packages
// applied to it, as the process itself holds them.
type ModuleRecords struct {
	// Module is the loaded module the records patch.
	Module Module
	// Records are the live records of one build of the module (they share
	// CodeHash), oldest first.
	Records []*pkg.AppliedRecord
}

// AppliedRecords lists every package applied in the target, without the
// packages: for each module of t.Modules(), the records in the process that
// describe it (their ModuleBase is the module's base), grouped by the build
// they patch (CodeHash), each group checked against the live entries the
// way AppliedSet checks it. A module appears once per build with live
// records (normally once), in module order; modules without live records
// are left out, so a process with nothing applied gives an empty list.
//
// A record whose entries all hold their original bytes is stale and left
// out; one partly live, or entries holding neither the jump nor the
// original bytes, is a *RecordError. It writes nothing. Function names are
// not in the records: with the package at hand, use AppliedSet. Like
// AppliedSet, it waits for another agent's Apply or Revert until ctx ends.
func AppliedRecords(ctx context.Context, t *Target) ([]ModuleRecords, error) {
	// Not in the middle of another agent's Apply or Revert (see lockTarget).
	unlock, err := lockTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	mods, err := t.p.Modules()
	if err != nil {
		return nil, fmt.Errorf("patch: modules of process %d: %w", t.PID(), err)
	}
	if len(mods) == 0 {
		return nil, nil
	}
	// One scan over the union of the modules' reaches: each record is read
	// once, then kept for the module it names if it lies in that module's
	// reach (as AppliedSet, and so Revert, would find it).
	lo, hi := recordReach(t, mods[0])
	for _, m := range mods[1:] {
		l, h := recordReach(t, m)
		lo, hi = min(lo, l), max(hi, h)
	}
	all, err := scanRecords(t, lo, hi)
	if err != nil {
		return nil, err
	}
	var out []ModuleRecords
	for _, m := range mods {
		l, h := recordReach(t, m)
		byBuild := map[[32]byte][]*pkg.AppliedRecord{}
		var builds [][32]byte
		for _, r := range all {
			if r.ModuleBase != m.Base || r.Region < l || r.Region >= h {
				continue
			}
			if _, ok := byBuild[r.CodeHash]; !ok {
				builds = append(builds, r.CodeHash)
			}
			byBuild[r.CodeHash] = append(byBuild[r.CodeHash], r)
		}
		sort.Slice(builds, func(i, j int) bool { return bytes.Compare(builds[i][:], builds[j][:]) < 0 })
		for _, b := range builds {
			set, err := liveSet(t, m, byBuild[b])
			if err != nil {
				return nil, err
			}
			if len(set.live) > 0 {
				out = append(out, ModuleRecords{Module: m, Records: set.live})
			}
		}
	}
	return out, nil
}
