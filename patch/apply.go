package patch

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// Applying a package (see "Applied set" in patch/pkg's documentation):
//
//	find the module by identity -> read the applied set -> sequence ->
//	pre-images -> code hash -> allocate near -> record + linked code ->
//	one transaction redirecting every entry.
//
// Every check happens before the first byte is written, so a refusal leaves
// the process byte-identical; a failure after the allocation frees it.

// ApplyOptions tune Apply and Revert. The zero value is the default.
type ApplyOptions struct {
	// Tx tunes the transaction that writes the entry jumps (strict stack
	// scan, backoff). Revert passes it on too: with Tx.Strict no thread may
	// hold a return address into a patched body when its memory is freed.
	Tx Options
	// AllowUnsigned applies a package that carries no signature (one built
	// in memory and never signed). Signed packages were verified by
	// pkg.Load; Apply trusts that.
	AllowUnsigned bool
	// ModuleBase, when set, picks the module loaded there among several
	// that match the package's identity (the same DLL mapped twice).
	ModuleBase uint64
}

// AppliedPackage is a package applied to a process by this agent run.
// Revert undoes it; Revert (the function) does the same from a new run.
type AppliedPackage struct {
	// Module is the module patched.
	Module Module
	// Record is what Apply wrote into the target (its first page of patch
	// memory): the applied set a later run reads back.
	Record *pkg.AppliedRecord
	// Pause and Attempts are the transaction's (see Applied).
	Pause    time.Duration
	Attempts int

	t  *Target
	tx *Applied
	p  *pkg.Package
}

// Sentinels of Apply and Revert, matched with errors.Is.
var (
	// ErrNoModule: no module of the target is the package's base build.
	ErrNoModule = errors.New("patch: no module matches the package's base image")
	// ErrSequence: the package does not follow what the target has applied.
	ErrSequence = errors.New("patch: package out of sequence")
	// ErrNotApplied: Revert found no record of the package in the target.
	ErrNotApplied = errors.New("patch: package is not applied")
	// ErrRecord: an applied record in the target does not agree with the
	// live bytes it describes.
	ErrRecord = errors.New("patch: applied record inconsistent with the process")
)

// ModuleMismatch is why one module of the target is not the package's base.
type ModuleMismatch struct {
	Module Module
	// Err is an *image.IdentityMismatchError (Field, Want, Got), or the
	// error reading the module.
	Err error
}

// NoModuleError reports that no module of the target has the identity the
// package was built for. Candidates lists every module looked at and why it
// did not match; errors.As finds their *image.IdentityMismatchError.
type NoModuleError struct {
	PID        int
	Module     string // the package's module name (a hint)
	Candidates []ModuleMismatch
	// Listed counts the modules the process listed (those of another
	// name and size are not candidates).
	Listed int
}

// Error implements error: the message names what NoModuleError carries.
func (e *NoModuleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "patch: process %d has no module matching the package's base %q (%d modules listed)", e.PID, e.Module, e.Listed)
	for _, c := range e.Candidates {
		fmt.Fprintf(&b, "; %s at %#x: %v", c.Module.Name, c.Module.Base, c.Err)
	}
	return b.String()
}

// Unwrap returns ErrNoModule and each candidate's error.
func (e *NoModuleError) Unwrap() []error {
	errs := []error{ErrNoModule}
	for _, c := range e.Candidates {
		errs = append(errs, c.Err)
	}
	return errs
}

// SequenceError reports a package whose Requires is not the highest
// sequence applied to the module (a skipped package, or one applied twice).
type SequenceError struct {
	Module   string
	Sequence uint32 // the package's
	Requires uint32 // the package's
	Applied  uint32 // the highest sequence applied (0: none)
}

// Error implements error: the message names what SequenceError carries.
func (e *SequenceError) Error() string {
	return fmt.Sprintf("patch: %s: package %d requires %d applied, the process has %d", e.Module, e.Sequence, e.Requires, e.Applied)
}

// Is matches ErrSequence.
func (e *SequenceError) Is(target error) bool { return target == ErrSequence }

// NotAppliedError reports a Revert of a package the target has no record
// of, or one applied before the newest (packages revert newest first).
type NotAppliedError struct {
	Module   string
	Sequence uint32
	Newest   uint32 // the highest sequence applied (0: none)
	Why      string
}

// Error implements error: the message names what NotAppliedError carries.
func (e *NotAppliedError) Error() string {
	return fmt.Sprintf("patch: %s: cannot revert package %d (newest applied %d): %s", e.Module, e.Sequence, e.Newest, e.Why)
}

// Is matches ErrNotApplied.
func (e *NotAppliedError) Is(target error) bool { return target == ErrNotApplied }

// RecordError reports an applied record whose entries are partly live:
// something other than Apply/Revert changed them.
type RecordError struct {
	Region   uint64
	Sequence uint32
	RVA      uint32
	Why      string
}

// Error implements error: the message names what RecordError carries.
func (e *RecordError) Error() string {
	return fmt.Sprintf("patch: applied record at %#x (package %d), entry RVA %#x: %s", e.Region, e.Sequence, e.RVA, e.Why)
}

// Is matches ErrRecord.
func (e *RecordError) Is(target error) bool { return target == ErrRecord }

// ArchError reports a package built for another architecture or format
// than the target's.
type ArchError struct {
	Want, Got string
}

// Error implements error: the message names what ArchError carries.
func (e *ArchError) Error() string {
	return fmt.Sprintf("patch: package is for %s, the target is %s", e.Want, e.Got)
}

// Apply applies a loaded package to the process: it finds the module the
// package was built for by identity (headers, then the code hash with the
// loader's base relocations undone), reads the applied set the target
// records, checks the sequence (Requires must be the highest sequence
// applied) and every replaced function's pre-image, allocates memory within
// reach of the module holding the applied record (read-only) and the linked
// bodies (read+execute), and commits one transaction redirecting every
// replaced entry to its new body.
//
// A refusal writes nothing: *NoModuleError (naming each candidate's
// mismatching field), *SequenceError, *verify.PreImageError (a function
// hooked by someone else), *image.IdentityMismatchError (Field "CodeHash"),
// pkg.ErrUnsigned, *ArchError, and a *NeedStopError from a back-end that
// cannot stop threads (Self on Linux). A failure after the allocation frees
// it and leaves the process as it was.
//
// Agents in different processes are serialised from reading the applied
// set to the last write: on Linux a Target's ptrace attachment excludes
// every other agent; on Windows Apply and Revert hold a lock named after
// the target process, waiting for another holder until ctx ends, then
// failing with a *HeldError (matching ErrHeld) before anything is read.
func Apply(ctx context.Context, t *Target, p *pkg.Package, opts ApplyOptions) (*AppliedPackage, error) {
	if t == nil || p == nil {
		return nil, errors.New("patch: Apply: nil target or package")
	}
	if !p.Signed() && !opts.AllowUnsigned {
		return nil, fmt.Errorf("patch: Apply: %w", pkg.ErrUnsigned)
	}
	if !t.caps.StopThreads {
		return nil, &NeedStopError{Function: p.Base.Module, Why: "applying a package writes several entries and its record, which needs every thread stopped; this back-end cannot stop them"}
	}
	if err := checkArch(t, p); err != nil {
		return nil, err
	}
	unlock, err := lockTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	defer unlock()
	mod, set, err := locate(t, p, opts.ModuleBase)
	if err != nil {
		return nil, err
	}
	if applied := set.newest(); p.Requires != applied {
		return nil, &SequenceError{Module: mod.Name, Sequence: p.Sequence, Requires: p.Requires, Applied: applied}
	}

	// Pre-images: what each entry must hold now (the package's pre-image,
	// or the jump of an applied package that replaced the same function).
	expect := make([][]byte, len(p.Functions))
	for i := range p.Functions {
		f := &p.Functions[i]
		if f.New {
			continue
		}
		addr := mod.Base + uint64(f.OldRVA)
		want := set.expected(addr, f.PreImage)
		got := make([]byte, len(want))
		if err := t.p.ReadAt(got, addr); err != nil {
			return nil, &SiteError{Op: "read", Function: f.Name, Addr: addr, Err: err}
		}
		if err := verify.PreImage(addr, f.Name, want, got); err != nil {
			return nil, err
		}
		expect[i] = want
	}
	if err := verifyModuleCode(t, p, mod, set); err != nil {
		return nil, err
	}

	data, err := p.Marshal()
	if err != nil {
		return nil, fmt.Errorf("patch: Apply: %w", err)
	}
	rec := &pkg.AppliedRecord{
		ModuleBase: mod.Base,
		CodeHash:   p.Base.Identity.CodeHash,
		Sequence:   p.Sequence,
		Requires:   p.Requires,
		Package:    sha256.Sum256(data),
	}
	rec.KeyID, _ = p.KeyID()

	// Patch memory: record pages, then code pages.
	page := pageSize()
	recSize, err := recordSize(rec, p)
	if err != nil {
		return nil, err
	}
	recPages := alignUp(uint64(recSize), page)
	codeSize := alignUp(max(p.Layout().Size, 1), page)
	total := recPages + codeSize
	region, err := t.p.AllocNear(ctx, mod.Base, total, reachFor(t.arch, mod.Size+total), proc.ProtRead|proc.ProtWrite)
	if err != nil {
		return nil, fmt.Errorf("patch: Apply: patch memory near %s: %w", mod.Name, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = t.p.Free(region, total)
		}
	}()
	codeBase := region + recPages
	linked, err := p.Link(mod.Base, codeBase)
	if err != nil {
		return nil, err
	}
	rec.Region, rec.RegionSize = region, total

	// Entry jumps: the bytes each overwrites go into the record.
	type entry struct {
		fn   Function
		to   uint64
		jump []byte
	}
	var entries []entry
	for i := range p.Functions {
		f := &p.Functions[i]
		if f.New {
			continue
		}
		addr := mod.Base + uint64(f.OldRVA)
		to := linked.Entries[i]
		jump, err := trampoline.EncodeJump(t.arch, addr, to)
		if err != nil {
			return nil, err
		}
		if len(jump) > len(expect[i]) {
			return nil, fmt.Errorf("patch: %s: the package's pre-image has %d bytes, the entry jump overwrites %d", f.Name, len(expect[i]), len(jump))
		}
		rec.Functions = append(rec.Functions, pkg.AppliedFunction{OldRVA: f.OldRVA, Entry: to, Original: append([]byte(nil), expect[i][:len(jump)]...)})
		entries = append(entries, entry{fn: Function{Name: f.Name, Addr: addr, Size: uint64(f.OldSize), Expect: expect[i]}, to: to, jump: jump})
	}
	recBytes, err := rec.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if uint64(len(recBytes)) > recPages {
		return nil, fmt.Errorf("patch: Apply: applied record of %d bytes outgrew its %d", len(recBytes), recPages)
	}

	// The record first (a crash after this leaves a record that is a
	// superset of what is live), then the code; then protections.
	if err := t.writeChecked("applied record", region, recBytes); err != nil {
		return nil, err
	}
	if err := t.writeChecked(p.Base.Module+" patch code", codeBase, linked.Code); err != nil {
		return nil, err
	}
	if _, err := t.p.Protect(region, recPages, proc.ProtRead); err != nil {
		return nil, &SiteError{Op: "protect", Function: "applied record", Addr: region, Err: err}
	}
	if _, err := t.p.Protect(codeBase, codeSize, proc.ProtRead|proc.ProtExec); err != nil {
		return nil, &SiteError{Op: "protect", Function: p.Base.Module + " patch code", Addr: codeBase, Err: err}
	}
	if err := t.p.FlushICache(codeBase, codeSize); err != nil {
		return nil, &SiteError{Op: "flush", Function: p.Base.Module + " patch code", Addr: codeBase, Err: err}
	}

	tx := t.Begin(opts.Tx)
	for _, e := range entries {
		if err := tx.Redirect(e.fn, e.to); err != nil {
			tx.Abort()
			return nil, err
		}
	}
	a, err := tx.Commit(ctx)
	if err != nil {
		var re *RestoreError
		if errors.As(err, &re) {
			// Entries may still jump into the patch memory: keep it (and
			// the record, which later runs check against the entries).
			ok = true
		}
		return nil, err
	}
	ok = true
	ap := &AppliedPackage{Module: mod, Record: rec, Pause: a.Pause, Attempts: a.Attempts, t: t, tx: a, p: p}
	registry.put(t, region, a)
	return ap, nil
}

// Revert undoes this package (see the function Revert).
func (a *AppliedPackage) Revert(ctx context.Context, opts ApplyOptions) error {
	return Revert(ctx, a.t, a.p, opts)
}

// Revert undoes an applied package using only what the target records and
// the package (to find the module): it may run in another agent process
// than the one that applied it. The package must be the newest applied to
// the module (packages revert newest first). With every thread stopped, it
// checks that each entry still holds the jump the record describes and that
// no thread executes inside the patch memory, writes the original bytes
// back, then frees the patch memory, record included — unless a thread
// still holds what may be a return address into it (a conservative stack
// scan): that memory is left mapped, its record stale (every entry holds
// its original bytes again), which later runs ignore.
//
// Errors: *NoModuleError, *NotAppliedError, *RecordError, the transaction's
// (*BusyError, *verify.PreImageError...).
func Revert(ctx context.Context, t *Target, p *pkg.Package, opts ApplyOptions) error {
	if t == nil || p == nil {
		return errors.New("patch: Revert: nil target or package")
	}
	if !t.caps.StopThreads {
		return &NeedStopError{Function: p.Base.Module, Why: "reverting a package needs every thread stopped; this back-end cannot stop them"}
	}
	if err := checkArch(t, p); err != nil {
		return err
	}
	unlock, err := lockTarget(ctx, t)
	if err != nil {
		return err
	}
	defer unlock()
	mod, set, err := locate(t, p, opts.ModuleBase)
	if err != nil {
		return err
	}
	newest := set.newest()
	var rec *pkg.AppliedRecord
	for _, r := range set.live {
		if r.Sequence == p.Sequence {
			rec = r
		}
	}
	switch {
	case rec == nil:
		return &NotAppliedError{Module: mod.Name, Sequence: p.Sequence, Newest: newest, Why: "no applied record of it in the process"}
	case rec.Sequence != newest:
		return &NotAppliedError{Module: mod.Name, Sequence: p.Sequence, Newest: newest, Why: "a newer package is applied: revert it first"}
	}
	if data, err := p.Marshal(); err == nil && sha256.Sum256(data) != rec.Package {
		return &NotAppliedError{Module: mod.Name, Sequence: p.Sequence, Newest: newest, Why: fmt.Sprintf("sequence %d was applied from another package (SHA-256 %x)", rec.Sequence, rec.Package)}
	}
	if err := verifyModuleCode(t, p, mod, set); err != nil {
		return err
	}

	ch := &change{}
	names := functionNames(p)
	for _, f := range rec.Functions {
		addr := mod.Base + uint64(f.OldRVA)
		jump, err := trampoline.EncodeJump(t.arch, addr, f.Entry)
		if err != nil {
			return err
		}
		name := names[f.OldRVA]
		ch.sites = append(ch.sites, site{name: name, addr: addr, want: jump, put: f.Original})
		ch.strict = append(ch.strict, verify.Range{Start: addr, End: addr + uint64(len(jump)), Function: name})
	}
	// No thread may run inside the patch memory about to be freed.
	body := verify.Range{Start: rec.Region, End: rec.Region + rec.RegionSize, Function: mod.Name + " patch memory"}
	ch.busy = append(ch.busy, body)
	ch.strict = append(ch.strict, body)

	t.mu.Lock()
	defer t.mu.Unlock()
	a := registry.get(t, rec.Region)
	if a != nil {
		if n := len(t.applied); n == 0 || t.applied[n-1] != a {
			newest := 0
			if n > 0 {
				newest = t.applied[n-1].id
			}
			return &OrderError{ID: a.id, Newest: newest}
		}
	}
	txo := opts.Tx.withDefaults()
	if _, err := t.applyStopped(ctx, ch, txo); err != nil {
		return err
	}
	if a != nil {
		a.rolled = true
		t.applied = t.applied[:len(t.applied)-1]
		registry.drop(t, rec.Region)
	}
	// From here on the record is stale (its entries hold their original
	// bytes): later runs ignore it whether or not the memory goes.
	if !t.regionUnused(ctx, body, txo) {
		// A thread may still return into a patched body (a conservative
		// stack scan says so): keeping the memory is safe, freeing is not.
		return nil
	}
	if err := t.p.Free(rec.Region, rec.RegionSize); err != nil {
		return fmt.Errorf("patch: Revert: entries restored, freeing the patch memory at %#x: %w", rec.Region, err)
	}
	return nil
}

// regionUnused reports whether no thread executes in r nor holds a word on
// its stack pointing into r (a conservative return-address scan), with
// every thread stopped. Once the entries that led into r are restored,
// nothing enters it again, so one clean look makes freeing it safe. A
// thread in the way is waited for (backing off) until ctx ends or a few
// tries pass.
func (t *Target) regionUnused(ctx context.Context, r verify.Range, opts Options) bool {
	act := verify.ActivenessOptions{}
	if t.arch == arch.AMD64 {
		act = verify.LinuxAMD64
	}
	stack := make([]byte, opts.StackBytes)
	// StackScan treats r like a function: a word equal to its first byte
	// is not a return address into it; widen by one.
	in, wide := []verify.Range{r}, []verify.Range{r}
	wide[0].Start--
	backoff := opts.Backoff
	for try := 0; try < 8; try++ {
		threads, err := t.p.Stop(ctx)
		if err != nil {
			return false
		}
		// The window allocates nothing (see window in stopped.go).
		var f fault
		unused := f.check.Activeness(threads, in, act) && t.scanStacks(threads, wide, stack, &f)
		if err := t.p.Resume(); err != nil || unused {
			return err == nil
		}
		if sleep(ctx, jitter(backoff)) != nil {
			return false
		}
		backoff = min(2*backoff, opts.MaxBackoff)
	}
	return false
}

// AppliedSet returns the module of the target that is p's base build and the
// records of the packages applied to it, oldest first. Where the back-end
// has a cross-agent lock (Windows), it waits for an Apply or Revert of
// another agent on the same process to finish, so it never reads one half
// done, until ctx ends (*HeldError).
func AppliedSet(ctx context.Context, t *Target, p *pkg.Package) (Module, []*pkg.AppliedRecord, error) {
	if err := checkArch(t, p); err != nil {
		return Module{}, nil, err
	}
	// Not in the middle of another agent's Apply or Revert (see lockTarget).
	unlock, err := lockTarget(ctx, t)
	if err != nil {
		return Module{}, nil, err
	}
	defer unlock()
	mod, set, err := locate(t, p, 0)
	if err != nil {
		return Module{}, nil, err
	}
	if err := verifyModuleCode(t, p, mod, set); err != nil {
		return Module{}, nil, err
	}
	return mod, set.live, nil
}

func checkArch(t *Target, p *pkg.Package) error {
	want := arch.AMD64
	if p.Base.Arch == image.ARM64 {
		want = arch.ARM64
	}
	if t.arch != want {
		return &ArchError{Want: fmt.Sprint(p.Base.Arch), Got: fmt.Sprint(t.arch)}
	}
	return nil
}

func functionNames(p *pkg.Package) map[uint32]string {
	m := map[uint32]string{}
	for _, f := range p.Functions {
		if !f.New {
			m[f.OldRVA] = f.Name
		}
	}
	return m
}

// writeChecked writes b at addr and reads it back.
func (t *Target) writeChecked(name string, addr uint64, b []byte) error {
	if err := t.p.WriteAt(b, addr); err != nil {
		return &SiteError{Op: "write", Function: name, Addr: addr, Err: err}
	}
	return t.readback(name, addr, b)
}

// recordSize is the encoded size of rec once it lists p's functions (the
// values do not change the size).
func recordSize(rec *pkg.AppliedRecord, p *pkg.Package) (int, error) {
	r := *rec
	r.Functions = nil
	for _, f := range p.Functions {
		if !f.New {
			r.Functions = append(r.Functions, pkg.AppliedFunction{OldRVA: f.OldRVA, Original: make([]byte, trampoline.FarJumpSize(archOf(p)))})
		}
	}
	b, err := r.MarshalBinary()
	return len(b), err
}

func archOf(p *pkg.Package) arch.Arch {
	if p.Base.Arch == image.ARM64 {
		return arch.ARM64
	}
	return arch.AMD64
}

// reachFor is how far from the module base patch memory may be so that
// every byte of it reaches every byte of the module (span bytes together)
// with the near forms Build emits: rel32 on x86-64, B/BL on ARM64.
func reachFor(a arch.Arch, span uint64) uint64 {
	limit := uint64(1<<31 - 1<<20)
	if a == arch.ARM64 {
		limit = 128<<20 - 1<<16
	}
	if span >= limit {
		return 0
	}
	return limit - span
}

func pageSize() uint64 {
	if n := os.Getpagesize(); n >= 4096 {
		return uint64(n)
	}
	return 4096
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) / a * a }

// moduleMem reads a module's memory at offsets from its base.
type moduleMem struct {
	t    *Target
	base uint64
}

func (m moduleMem) ReadAt(b []byte, off int64) (int, error) {
	if err := m.t.p.ReadAt(b, m.base+uint64(off)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// locate finds the module that is p's base build (headers: machine,
// timestamp, checksum, size, CodeView or build ID) and reads its applied
// set. The code hash is checked separately (verifyModuleCode), after the
// cheaper refusals.
func locate(t *Target, p *pkg.Package, want uint64) (Module, *appliedSet, error) {
	mods, err := t.p.Modules()
	if err != nil {
		return Module{}, nil, fmt.Errorf("patch: modules of process %d: %w", t.PID(), err)
	}
	// The name is a hint: look at same-named modules first.
	sort.SliceStable(mods, func(i, j int) bool {
		return strings.EqualFold(mods[i].Name, p.Base.Module) && !strings.EqualFold(mods[j].Name, p.Base.Module)
	})
	nf := &NoModuleError{PID: t.PID(), Module: p.Base.Module, Listed: len(mods)}
	for _, m := range mods {
		if want != 0 && m.Base != want {
			continue
		}
		if !sizeFits(p, m) {
			if strings.EqualFold(m.Name, p.Base.Module) {
				nf.Candidates = append(nf.Candidates, ModuleMismatch{Module: m, Err: &image.IdentityMismatchError{Field: "SizeOfImage", Want: fmt.Sprintf("%#x", p.Base.Size), Got: fmt.Sprintf("%#x (mapped)", m.Size)}})
			}
			continue
		}
		if err := verifyHeaders(t, p, m); err != nil {
			nf.Candidates = append(nf.Candidates, ModuleMismatch{Module: m, Err: err})
			continue
		}
		set, err := readAppliedSet(t, m, p.Base.Identity.CodeHash)
		if err != nil {
			return Module{}, nil, err
		}
		return m, set, nil
	}
	return Module{}, nil, nf
}

// sizeFits is the cheap first filter: a PE module's mapped size is its
// SizeOfImage; an ELF module's file mappings end within the PT_LOAD span
// (rounded up to the largest page size).
func sizeFits(p *pkg.Package, m Module) bool {
	if p.Base.Format == image.FormatPE {
		return m.Size == uint64(p.Base.Size)
	}
	return m.Size > 0 && m.Size <= alignUp(uint64(p.Base.Size), 64<<10)
}

// verifyHeaders compares the live headers of m with the package's identity,
// the way image.VerifyLoaded does (it is given an image holding only the
// identity, so its code comparison has nothing to hash and reports
// CodeHash: that result means the headers matched).
func verifyHeaders(t *Target, p *pkg.Package, m Module) error {
	img := &image.Image{Format: p.Base.Format, Arch: p.Base.Arch, Base: p.Base.ImageBase, Size: p.Base.Size, Identity: p.Base.Identity}
	err := img.VerifyLoaded(moduleMem{t, m.Base}, m.Base, nil)
	var im *image.IdentityMismatchError
	if errors.As(err, &im) && im.Field == "CodeHash" {
		return nil
	}
	if err == nil {
		// Only possible for an identity whose CodeHash is that of nothing.
		return &image.IdentityMismatchError{Field: "CodeHash", Want: fmt.Sprintf("%x", p.Base.Identity.CodeHash), Got: "no code"}
	}
	return err
}

// verifyModuleCode checks the module's code against the package's code
// hash, with the bytes applied packages overwrote put back.
func verifyModuleCode(t *Target, p *pkg.Package, m Module, set *appliedSet) error {
	if err := p.Base.VerifyCode(moduleMem{t, m.Base}, m.Base, set.originals()); err != nil {
		return fmt.Errorf("patch: %s at %#x is not the package's base build: %w", m.Name, m.Base, err)
	}
	return nil
}

// registry remembers the transactions this agent process committed for
// packages, by target and patch memory, so that Revert keeps the Target's
// stack of applied transactions in order.
var registry = &appliedRegistry{m: map[*Target]map[uint64]*Applied{}}

type appliedRegistry struct {
	mu    sync.Mutex
	m     map[*Target]map[uint64]*Applied
	locks map[*Target]*sync.Mutex
}

// lock serialises Apply and Revert on one Target: each reads the applied
// set, decides, then writes; two at once would both see the same set.
// Agents in other processes are kept out by lockTarget.
func (r *appliedRegistry) lock(t *Target) (unlock func()) {
	r.mu.Lock()
	if r.locks == nil {
		r.locks = map[*Target]*sync.Mutex{}
	}
	l := r.locks[t]
	if l == nil {
		l = &sync.Mutex{}
		r.locks[t] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (r *appliedRegistry) put(t *Target, region uint64, a *Applied) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[t] == nil {
		r.m[t] = map[uint64]*Applied{}
	}
	r.m[t][region] = a
}

func (r *appliedRegistry) get(t *Target, region uint64) *Applied {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[t][region]
}

func (r *appliedRegistry) drop(t *Target, region uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[t], region)
	if len(r.m[t]) == 0 {
		delete(r.m, t)
	}
}
