package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// targetFlags are the flags apply, revert and status share: which process,
// which keys to trust, how long to keep trying.
type targetFlags struct {
	pid      *int
	keys     stringList
	unsigned *bool
	strict   *bool
	timeout  *time.Duration
}

func addTargetFlags(fs *flag.FlagSet) *targetFlags {
	tf := &targetFlags{
		pid:      fs.Int("pid", 0, "process `id` of the target (required)"),
		unsigned: fs.Bool("unsigned", false, "accept an unsigned package"),
		strict:   fs.Bool("strict", false, "also refuse while a stack holds a return address into a replaced function"),
		timeout:  fs.Duration("timeout", 30*time.Second, "give up when threads stay in the way, or another agent holds the process, this long"),
	}
	fs.Var(&tf.keys, "key", "trusted public key `file` (repeatable)")
	return tf
}

// run gives do a context bounded by -timeout, the package at path (its
// signature verified first; nil when path is empty) and process -pid
// attached, closed when do returns.
func (tf *targetFlags) run(e *env, path string, do func(ctx context.Context, t *patch.Target, p *pkg.Package) error) error {
	if *tf.pid <= 0 {
		return usageError("-pid is required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *tf.timeout)
	defer cancel()
	var p *pkg.Package
	if path != "" {
		var err error
		if p, err = tf.load(path); err != nil {
			return err
		}
	}
	t, err := attach(ctx, *tf.pid)
	if err != nil {
		return err
	}
	defer t.Close()
	e.progress("attached to process %d", *tf.pid)
	return do(ctx, t, p)
}

// load reads the package at path, its signature checked against -key.
func (tf *targetFlags) load(path string) (*pkg.Package, error) {
	opts := pkg.LoadOptions{AllowUnsigned: *tf.unsigned}
	for _, k := range tf.keys {
		data, err := os.ReadFile(k)
		if err != nil {
			return nil, err
		}
		pub, err := pkg.ParsePublicKey(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		opts.TrustedKeys = append(opts.TrustedKeys, pub)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := pkg.Load(data, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// attach opens process pid with this OS's back-end.
func attach(ctx context.Context, pid int) (*patch.Target, error) {
	if runtime.GOOS == "windows" {
		return patch.OpenWindows(pid)
	}
	return patch.AttachLinux(ctx, pid)
}

func (tf *targetFlags) applyOptions() patch.ApplyOptions {
	return patch.ApplyOptions{Tx: patch.Options{Strict: *tf.strict}, AllowUnsigned: *tf.unsigned}
}

var applyCommand = &command{
	name:  "apply",
	args:  "PACKAGE",
	short: "apply a package to running process -pid N",
	long: `Apply loads PACKAGE (its signature verified against -key first), attaches
to process -pid (Linux: ptrace; Windows: OpenProcess), finds the module the
package was built for by identity (headers, then the code hash), checks the
sequence and every replaced function's bytes, and redirects every replaced
function to its new body in one transaction, with the process's threads
stopped. Any refusal or failure leaves the process exactly as it was.
The process keeps running throughout; revert undoes it.`,
	nargs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		tf := addTargetFlags(fs)
		return func(e *env, args []string) error {
			return tf.run(e, args[0], func(ctx context.Context, t *patch.Target, p *pkg.Package) error {
				a, err := patch.Apply(ctx, t, p, tf.applyOptions())
				if err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "applied %s (sequence %d) to process %d: %s at %#x, %d functions redirected, threads stopped %v (%d attempts)\n",
					args[0], p.Sequence, t.PID(), a.Module.Name, a.Module.Base, len(a.Record.Functions), a.Pause.Round(time.Microsecond), a.Attempts)
				return nil
			})
		}
	},
}

var revertCommand = &command{
	name:  "revert",
	args:  "PACKAGE",
	short: "undo an applied package in process -pid N",
	long: `Revert attaches to process -pid, finds the module PACKAGE applies to and the
record the package left in the process when it was applied, and restores
the original bytes of every redirected function (checking that each entry
still holds the jump it wrote), then frees the patch memory. Packages revert
newest first. It may run in another agent process than the one that applied
the package.`,
	nargs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		tf := addTargetFlags(fs)
		return func(e *env, args []string) error {
			return tf.run(e, args[0], func(ctx context.Context, t *patch.Target, p *pkg.Package) error {
				if err := patch.Revert(ctx, t, p, tf.applyOptions()); err != nil {
					return err
				}
				fmt.Fprintf(e.stdout, "reverted %s (sequence %d) in process %d\n", args[0], p.Sequence, t.PID())
				return nil
			})
		}
	},
}

var statusCommand = &command{
	name:  "status",
	args:  "[PACKAGE]",
	short: "which packages process -pid N has applied",
	long: `Status attaches to process -pid and lists the packages applied in it, as
the process itself records them. Without PACKAGE it lists every module that
has packages applied (name, load address); with PACKAGE (its signature
verified against -key first) only the module PACKAGE was built for, found
by identity. Each package shows its sequence and the one it requires, its
signer's key ID, its patch memory, the SHA-256 of the package file (its
first 12 hex digits) and the functions it redirected by RVA: the process
records no names, so names are shown only for the functions PACKAGE
replaces. A record left behind by a revert that could not free its memory
is not listed. It writes nothing. -key and -unsigned matter only with
PACKAGE.`,
	optArgs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		tf := addTargetFlags(fs)
		return func(e *env, args []string) error {
			path := ""
			if len(args) > 0 {
				path = args[0]
			}
			return tf.run(e, path, func(ctx context.Context, t *patch.Target, p *pkg.Package) error {
				if p == nil {
					return statusAll(ctx, e, t)
				}
				m, recs, err := patch.AppliedSet(ctx, t, p)
				if err != nil {
					return err
				}
				names := map[uint32]string{}
				for _, f := range p.Functions {
					if !f.New {
						names[f.OldRVA] = f.Name
					}
				}
				printApplied(e, t.PID(), m, recs, names)
				return nil
			})
		}
	},
}

// statusAll lists every package applied in the process, without a package:
// the records alone say which module, sequence, signer and functions.
func statusAll(ctx context.Context, e *env, t *patch.Target) error {
	mods, err := patch.AppliedRecords(ctx, t)
	if err != nil {
		return err
	}
	if len(mods) == 0 {
		fmt.Fprintf(e.stdout, "process %d: no packages applied\n", t.PID())
		return nil
	}
	for _, m := range mods {
		printApplied(e, t.PID(), m.Module, m.Records, nil)
	}
	return nil
}

// printApplied writes one module's applied packages, oldest first, with the
// functions each redirected (named when names has the RVA).
func printApplied(e *env, pid int, m patch.Module, recs []*pkg.AppliedRecord, names map[uint32]string) {
	fmt.Fprintf(e.stdout, "process %d: %s at %#x: %d packages applied\n", pid, m.Name, m.Base, len(recs))
	for _, r := range recs {
		signer := "unsigned"
		if r.KeyID != (pkg.KeyID{}) {
			signer = "signed by " + r.KeyID.String()
		}
		fmt.Fprintf(e.stdout, "  sequence %d (requires %d), %s, %d functions, patch memory %#x (%d bytes)\n",
			r.Sequence, r.Requires, signer, len(r.Functions), r.Region, r.RegionSize)
		fmt.Fprintf(e.stdout, "    package sha256 %x\n", r.Package[:6])
		for _, f := range r.Functions {
			if name, ok := names[f.OldRVA]; ok {
				fmt.Fprintf(e.stdout, "    function RVA %#x %s\n", f.OldRVA, name)
			} else {
				fmt.Fprintf(e.stdout, "    function RVA %#x\n", f.OldRVA)
			}
		}
	}
}
