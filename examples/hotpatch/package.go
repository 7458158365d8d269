package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

var keygenCommand = &command{
	name:  "keygen",
	args:  "NAME",
	short: "make an ed25519 key pair for signing packages",
	long: `Keygen writes a new ed25519 key pair: NAME.key, the private key (PEM,
PKCS #8, mode 0600), which signs packages (build -key), and NAME.pub, the
public key in one line of text, which agents trust (show -key). It prints the
key ID that signed packages carry. It refuses to overwrite either file.`,
	nargs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		return func(e *env, args []string) error {
			pub, priv, err := pkg.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			privPEM, err := pkg.MarshalPrivateKeyPEM(priv)
			if err != nil {
				return err
			}
			name := args[0]
			if err := writeNew(name+".key", privPEM, 0o600); err != nil {
				return err
			}
			if err := writeNew(name+".pub", pkg.MarshalPublicKeyText(pub), 0o644); err != nil {
				// Leave nothing half made: a private key without its
				// public half would only confuse.
				os.Remove(name + ".key")
				return err
			}
			fmt.Fprintf(e.stdout, "key %s: private %s.key, public %s.pub\n", pkg.KeyIDOf(pub), name, name)
			return nil
		}
	},
}

// writeNew writes a file that must not exist yet.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	return f.Close()
}

var buildCommand = &command{
	name:  "build",
	args:  "OLD NEW",
	short: "build a signed patch package from two builds",
	long: `Build diffs OLD (the build that is running) and NEW (the fixed build), and
writes a package (package patch/pkg) that carries the new body of every changed
function, with its references retargeted to OLD, bound to OLD's exact identity.
It is signed with the private key -key (from keygen) unless -unsigned is given.
The same inputs give a byte-identical package.

What cannot be hot-patched (new or resized writable data, a function shorter
than the jump, Go-compiled bodies, ...) fails the build, listing every
function and why on stderr; with -partial such functions are left out
(and listed) instead.`,
	nargs: 2,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		keyPath := fs.String("key", "", "private key `file` to sign with (required unless -unsigned)")
		out := fs.String("o", "", "package `file` to write (required)")
		unsigned := fs.Bool("unsigned", false, "write an unsigned package (agents load it only when told to)")
		seq := fs.Uint("seq", 1, "sequence number of this package in the module's series")
		requires := fs.Int("requires", -1, "sequence that must be applied first (-1: seq-1)")
		desc := fs.String("desc", "", "description for operators")
		partial := fs.Bool("partial", false, "leave out what cannot be hot-patched instead of failing")
		quiet := fs.Bool("q", false, "no progress on stderr")
		return func(e *env, args []string) error {
			if *quiet {
				e.stderr = io.Discard
			}
			if *out == "" {
				return usageError("-o is required")
			}
			if (*keyPath == "") == !*unsigned {
				return usageError("give exactly one of -key and -unsigned")
			}
			if *seq == 0 || *seq > 1<<32-1 || *requires < -1 || int64(*requires) >= int64(*seq) {
				return usageError("want 1 <= -seq and -requires < -seq")
			}
			var priv ed25519.PrivateKey
			if *keyPath != "" {
				data, err := os.ReadFile(*keyPath)
				if err != nil {
					return err
				}
				if priv, err = pkg.ParsePrivateKey(data); err != nil {
					return fmt.Errorf("%s: %w", *keyPath, err)
				}
			}
			old, err := loadProgress(e, args[0])
			if err != nil {
				return err
			}
			new, err := loadProgress(e, args[1])
			if err != nil {
				return err
			}
			rep, err := diff.Compare(old, new, nil)
			if err != nil {
				return err
			}
			e.progress("%d changed, %d added, %d removed functions", rep.Counts.Changed, rep.Counts.Added, rep.Counts.Removed)
			opts := pkg.BuildOptions{Sequence: uint32(*seq), Module: baseName(args[0]), Description: *desc, AllowPartial: *partial}
			if *requires >= 0 {
				r := uint32(*requires)
				opts.Requires = &r
			}
			p, refused, err := pkg.Build(old, new, rep, opts)
			var re *pkg.RefusedError
			if errors.As(err, &re) {
				refused = re.Refused
			}
			for _, r := range refused {
				e.progress("refused %s", r)
			}
			if err != nil {
				if re != nil {
					return fmt.Errorf("%d functions cannot be hot-patched (%s); -partial leaves them out", len(re.Functions()), strings.Join(re.Functions(), ", "))
				}
				return err
			}
			if priv != nil {
				if err := p.Sign(priv); err != nil {
					return err
				}
			}
			data, err := p.Marshal()
			if err != nil {
				return err
			}
			if err := os.WriteFile(*out, data, 0o644); err != nil {
				return err
			}
			signer := "unsigned"
			if id, ok := p.KeyID(); ok {
				signer = "signed by " + id.String()
			}
			fmt.Fprintf(e.stdout, "%s: %d functions, %d constants, %d bytes, sequence %d, %s\n", *out, len(p.Functions), len(p.Constants), len(data), p.Sequence, signer)
			return nil
		}
	},
}

// baseName is the file name of a path written with / or \ separators, the
// module name a package records.
func baseName(path string) string {
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		return path[i+1:]
	}
	return path
}

// usageError is a mistake in the invocation found after flag parsing.
type usageError string

func (u usageError) Error() string { return string(u) }

var showCommand = &command{
	name:  "show",
	args:  "PACKAGE",
	short: "verify a package's signature and print what it carries",
	long: `Show loads PACKAGE the way an agent does: the signature is verified against
the trusted public keys (-key, repeatable) before anything else is read, and a
package whose signer is not trusted is refused. It then prints the build the
package applies to (module, identity), its sequence, and every function it
replaces (old RVA and size, new body size, relocations) and carries.
-unsigned also accepts a package without a signature.`,
	nargs: 1,
	setup: func(fs *flag.FlagSet) func(*env, []string) error {
		var keys stringList
		fs.Var(&keys, "key", "trusted public key `file` (repeatable)")
		unsigned := fs.Bool("unsigned", false, "accept an unsigned package")
		asJSON := fs.Bool("json", false, "print the package's manifest as JSON")
		return func(e *env, args []string) error {
			opts := pkg.LoadOptions{AllowUnsigned: *unsigned}
			for _, k := range keys {
				data, err := os.ReadFile(k)
				if err != nil {
					return err
				}
				pub, err := pkg.ParsePublicKey(data)
				if err != nil {
					return fmt.Errorf("%s: %w", k, err)
				}
				opts.TrustedKeys = append(opts.TrustedKeys, pub)
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			p, err := pkg.Load(data, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			m := newManifest(p)
			if *asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(m)
			}
			m.writeText(e.stdout, args[0])
			return nil
		}
	},
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// manifest is what show prints: the package without its code bytes.
type manifest struct {
	Module      string          `json:"module"`
	Format      string          `json:"format"`
	Arch        string          `json:"arch"`
	ImageBase   uint64          `json:"image_base"`
	Identity    inspectIdentity `json:"identity"`
	Sequence    uint32          `json:"sequence"`
	Requires    uint32          `json:"requires"`
	Description string          `json:"description,omitempty"`
	Signer      string          `json:"signer,omitempty"` // key ID; empty when unsigned
	Functions   []manifestFunc  `json:"functions"`
	Constants   []manifestConst `json:"constants,omitempty"`
}

type manifestFunc struct {
	Name    string `json:"name"`
	New     bool   `json:"new,omitempty"` // carried added function, not a replacement
	OldRVA  uint32 `json:"old_rva,omitempty"`
	OldSize uint32 `json:"old_size,omitempty"`
	Blob    int    `json:"body_bytes"`
	Relocs  int    `json:"relocations"`
}

type manifestConst struct {
	Name  string `json:"name"`
	Bytes int    `json:"bytes"`
}

func newManifest(p *pkg.Package) *manifest {
	b := p.Base
	id := b.Identity
	m := &manifest{
		Module: b.Module, Format: b.Format.String(), Arch: b.Arch.String(), ImageBase: b.ImageBase,
		Identity: inspectIdentity{
			Machine: id.Machine, TimeDateStamp: id.TimeDateStamp, CheckSum: id.CheckSum, SizeOfImage: id.SizeOfImage,
			BuildID: hex.EncodeToString(id.BuildID), CodeHash: hex.EncodeToString(id.CodeHash[:]),
		},
		Sequence: p.Sequence, Requires: p.Requires, Description: p.Description,
	}
	if cv := id.CodeView; cv != nil {
		m.Identity.CodeView = fmt.Sprintf("%s/%d", hex.EncodeToString(cv.GUID[:]), cv.Age)
	}
	if kid, ok := p.KeyID(); ok {
		m.Signer = kid.String()
	}
	for _, f := range p.Functions {
		m.Functions = append(m.Functions, manifestFunc{Name: f.Name, New: f.New, OldRVA: f.OldRVA, OldSize: f.OldSize, Blob: len(f.Blob), Relocs: len(f.Relocs)})
	}
	for _, c := range p.Constants {
		m.Constants = append(m.Constants, manifestConst{Name: c.Name, Bytes: len(c.Data)})
	}
	return m
}

func (m *manifest) writeText(w io.Writer, path string) {
	signer := "unsigned"
	if m.Signer != "" {
		signer = "signed by " + m.Signer + " (verified)"
	}
	fmt.Fprintf(w, "%s: sequence %d (requires %d), %s\n", path, m.Sequence, m.Requires, signer)
	if m.Description != "" {
		fmt.Fprintf(w, "description: %s\n", m.Description)
	}
	fmt.Fprintf(w, "applies to: %s, %s %s, base %#x\n", m.Module, m.Format, m.Arch, m.ImageBase)
	m.Identity.writeText(w, m.Format)
	fmt.Fprintf(w, "%d functions:\n", len(m.Functions))
	for _, f := range m.Functions {
		if f.New {
			fmt.Fprintf(w, "  %-24s carried (new)           body %5d bytes, %d relocations\n", f.Name, f.Blob, f.Relocs)
			continue
		}
		fmt.Fprintf(w, "  %-24s replaces %#08x (%4d)  body %5d bytes, %d relocations\n", f.Name, f.OldRVA, f.OldSize, f.Blob, f.Relocs)
	}
	if len(m.Constants) > 0 {
		fmt.Fprintf(w, "%d constants:", len(m.Constants))
		for _, c := range m.Constants {
			fmt.Fprintf(w, " %s (%d bytes)", c.Name, c.Bytes)
		}
		fmt.Fprintln(w)
	}
}
