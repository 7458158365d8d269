package patch

import (
	"context"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// lockTarget serialises the agents that read t's applied set and then
// write (Apply, Revert) or read it (AppliedSet, AppliedRecords): within
// this process by Target (registry.lock), and across agent processes where
// the back-end implements proc.Locker (Windows: any number of processes may
// open the target, so a named lock per target process keeps them apart). It
// waits for another holder until ctx ends, then fails with a *HeldError.
//
// The Linux ptrace back-end has no Locker: its attachment is exclusive and
// lasts as long as the Target, so no other agent can even read the target
// while this one is attached (AttachLinux waits for it instead). Linux Self
// has none either: it cannot apply packages at all (NeedStopError).
func lockTarget(ctx context.Context, t *Target) (unlock func(), err error) {
	unlockLocal := registry.lock(t)
	l, ok := t.p.(proc.Locker)
	if !ok {
		return unlockLocal, nil
	}
	unlockAgents, err := l.Lock(ctx)
	if err != nil {
		unlockLocal()
		return nil, fmt.Errorf("patch: process %d: %w", t.PID(), err)
	}
	return func() {
		unlockAgents()
		unlockLocal()
	}, nil
}
