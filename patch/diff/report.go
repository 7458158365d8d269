package diff

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Report is the result of Compare: the two images' identities and the fate of
// every function. It marshals to JSON (encoding/json) deterministically: the
// same two images always give byte-identical output.
type Report struct {
	Old ImageSummary `json:"old"`
	New ImageSummary `json:"new"`
	// Functions lists every function of both images once: each matched pair,
	// then each Removed (old only) and Added (new only) function, sorted by
	// name (new name, else old name), then old RVA, then new RVA.
	Functions []Function `json:"functions"`
	// Counts summarises Functions.
	Counts Counts `json:"counts"`
}

// ImageSummary identifies one side of the comparison.
type ImageSummary struct {
	Format    string `json:"format"` // "PE" or "ELF"
	Arch      string `json:"arch"`   // "amd64" or "arm64"
	Functions int    `json:"functions"`
	// Machine, TimeDateStamp and CheckSum as the headers say (PE; Machine
	// is e_machine for ELF).
	Machine       uint16 `json:"machine"`
	TimeDateStamp uint32 `json:"timestamp,omitempty"`
	CheckSum      uint32 `json:"checksum,omitempty"`
	// CodeView is the RSDS GUID and age in hex ("GUID-age"), BuildID the ELF
	// build id in hex; empty when absent.
	CodeView string `json:"codeview,omitempty"`
	BuildID  string `json:"build_id,omitempty"`
	// CodeHash is the SHA-256 of the executable sections, in hex.
	CodeHash string `json:"code_hash"`
}

// Counts is how many functions ended in each Status, and how the pairs were
// matched.
type Counts struct {
	Unchanged int `json:"unchanged"`
	Changed   int `json:"changed"`
	Added     int `json:"added"`
	Removed   int `json:"removed"`
	// ByName, ByBodyHash and ByCallGraph count matched pairs by Match.
	ByName      int `json:"by_name"`
	ByBodyHash  int `json:"by_body_hash"`
	ByCallGraph int `json:"by_call_graph"`
}

// Function is one function's fate: a matched pair (Unchanged or Changed), or a
// function present in only one image (Removed, Added).
type Function struct {
	OldName string `json:"old_name,omitempty"`
	NewName string `json:"new_name,omitempty"`
	// OldRVA/OldSize are zero for Added functions, NewRVA/NewSize for Removed.
	OldRVA  uint32 `json:"old_rva"`
	OldSize uint32 `json:"old_size"`
	NewRVA  uint32 `json:"new_rva"`
	NewSize uint32 `json:"new_size"`
	Status  Status `json:"status"`
	// Match says how the pair was found (MatchNone for Added and Removed).
	Match Match `json:"match"`
	// Reasons say why a Changed function differs (nil otherwise), in order
	// of kind, each at most once per kind and target.
	Reasons []Reason `json:"reasons,omitempty"`
	// References are the outside references of a Changed function's new
	// body, by offset (nil for other statuses): what a patch must retarget.
	References []Reference `json:"references,omitempty"`
}

// Name returns the new name, or the old name for a Removed function.
func (f *Function) Name() string {
	if f.NewName != "" {
		return f.NewName
	}
	return f.OldName
}

// HotPatchable reports whether no reference of the function is NotHotPatchable.
func (f *Function) HotPatchable() bool {
	for i := range f.References {
		if f.References[i].Resolution == NotHotPatchable {
			return false
		}
	}
	return true
}

// Status is the classification of a function between the two images.
type Status uint8

// The four classifications.
const (
	Unchanged Status = iota // same code after symbolic normalisation; may have moved
	Changed                 // matched, but the normalised bodies differ (see Reasons)
	Added                   // only in the new image
	Removed                 // only in the old image
)

var statusNames = [...]string{"unchanged", "changed", "added", "removed"}

// String returns the lower-case name ("changed").
func (s Status) String() string { return enumString(statusNames[:], uint8(s), "status") }

// MarshalText writes the lower-case name ("changed").
func (s Status) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads the lower-case name.
func (s *Status) UnmarshalText(b []byte) error {
	return enumParse(statusNames[:], b, (*uint8)(s), "status")
}

// Match is how an old and a new function were paired.
type Match uint8

// Matching methods, in the order Compare tries them.
const (
	MatchNone      Match = iota // not paired (Added, Removed)
	MatchName                   // same symbol or export name
	MatchBodyHash               // unnamed on at least one side; same normalised body
	MatchCallGraph              // unnamed; called from (or calling) matched pairs at the same call site
)

var matchNames = [...]string{"none", "name", "body-hash", "call-graph"}

// String returns the name ("body-hash").
func (m Match) String() string { return enumString(matchNames[:], uint8(m), "match") }

// MarshalText writes the name ("name", "body-hash", "call-graph").
func (m Match) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads the name.
func (m *Match) UnmarshalText(b []byte) error {
	return enumParse(matchNames[:], b, (*uint8)(m), "match")
}

// ReasonKind is one kind of difference between two matched bodies. The names
// are the ground-truth vocabulary of testdata/groundtruth.json, plus "size"
// and "import".
type ReasonKind uint8

// Reason kinds.
const (
	// ReasonInstructions: the instruction bytes differ with every address
	// field masked (Offset is the first differing byte of the new body).
	ReasonInstructions ReasonKind = iota
	// ReasonConstant: a referenced read-only constant differs in content.
	ReasonConstant
	// ReasonGlobal: the set of writable data read or written differs, or a
	// reference resolves to another global.
	ReasonGlobal
	// ReasonCall: the set of called (or tail-jumped-to) functions differs, or
	// a call reaches another function (a callee renamed or replaced).
	ReasonCall
	// ReasonJumpTable: a jump table's case targets differ.
	ReasonJumpTable
	// ReasonSize: the code sizes differ.
	ReasonSize
	// ReasonImport: the set of imports referenced differs.
	ReasonImport
	// ReasonOther: another reference differs (thread-local storage, code
	// outside any function).
	ReasonOther
)

var reasonNames = [...]string{"instructions", "constant", "global", "call", "jump-table", "size", "import", "other"}

// String returns the vocabulary name ("jump-table").
func (k ReasonKind) String() string { return enumString(reasonNames[:], uint8(k), "reason") }

// MarshalText writes the vocabulary name ("jump-table").
func (k ReasonKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads the vocabulary name.
func (k *ReasonKind) UnmarshalText(b []byte) error {
	return enumParse(reasonNames[:], b, (*uint8)(k), "reason")
}

// Reason is one difference between a matched pair.
type Reason struct {
	Kind ReasonKind `json:"kind"`
	// Offset is where in the new body the difference shows (-1 when it is
	// not one place, e.g. a set difference).
	Offset int `json:"offset"`
	// Old and New describe the differing thing on each side ("" when absent
	// on that side): a symbol, "lib!name", a quoted constant, byte counts.
	Old string `json:"old,omitempty"`
	New string `json:"new,omitempty"`
}

// String is "kind at +offset: old -> new".
func (r Reason) String() string {
	s := r.Kind.String()
	if r.Offset >= 0 {
		s += fmt.Sprintf(" at +%#x", r.Offset)
	}
	if r.Old != "" || r.New != "" {
		s += fmt.Sprintf(": %s -> %s", orNone(r.Old), orNone(r.New))
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// RefKind is what an outside reference of a body does with its target.
type RefKind uint8

// Reference kinds.
const (
	RefCall      RefKind = iota // direct call to a function
	RefJump                     // direct jump to another function (tail call)
	RefRead                     // data read
	RefWrite                    // data write (read-modify-write included)
	RefAddress                  // address taken (x64 LEA, ARM64 ADR, ADRP+ADD, absolute pointer)
	RefConstant                 // read of, or address of, read-only data
	RefImport                   // through an import slot (IAT/GOT): call, jump or load
	RefTLS                      // thread-local storage (fs/gs segment, TPIDR_EL0)
	RefJumpTable                // a jump table whose entries point into this body
)

var refKindNames = [...]string{"call", "jump", "read", "write", "address", "constant", "import", "tls", "jump-table"}

// String returns the name ("write").
func (k RefKind) String() string { return enumString(refKindNames[:], uint8(k), "refkind") }

// MarshalText writes the name.
func (k RefKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads the name.
func (k *RefKind) UnmarshalText(b []byte) error {
	return enumParse(refKindNames[:], b, (*uint8)(k), "refkind")
}

// Resolution is what a reference of a new body corresponds to in the old
// image: what a patch building step does with it.
type Resolution uint8

// Resolutions.
const (
	// ToFunction: an old function (Target.Name, Target.RVA + Target.Offset).
	ToFunction Resolution = iota
	// ToNewFunction: a function only in the new image (Added): the patch
	// must carry it too. Target.RVA is its new RVA.
	ToNewFunction
	// ToData: an old data symbol (Target.Name, RVA, Offset); for writable data
	// its size is the same in both images.
	ToData
	// ToImport: the old image's import slot for the same library!name.
	ToImport
	// CarryConstant: read-only bytes the patch carries itself (Content; for
	// a jump table, Table).
	CarryConstant
	// NotHotPatchable: nothing in the old image can stand for the target
	// (Why says what): new or resized writable data, thread-local storage,
	// a new import, an unknown target.
	NotHotPatchable
)

var resolutionNames = [...]string{"function", "new-function", "data", "import", "carry-constant", "not-hot-patchable"}

// String returns the name ("carry-constant").
func (r Resolution) String() string { return enumString(resolutionNames[:], uint8(r), "resolution") }

// MarshalText writes the name.
func (r Resolution) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the name.
func (r *Resolution) UnmarshalText(b []byte) error {
	return enumParse(resolutionNames[:], b, (*uint8)(r), "resolution")
}

// Form is how a reference is encoded in the new body: what a relocator must
// rewrite.
type Form uint8

// Encodings.
const (
	FormNone      Form = iota // nothing to rewrite (TLS access)
	FormRel8                  // x86-64 rel8 branch displacement
	FormRel32                 // x86-64 rel32 branch displacement (call, jmp, jcc)
	FormRIP32                 // x86-64 [rip+disp32] memory operand
	FormAbs64                 // 8-byte absolute address under a base relocation
	FormAbs32                 // 4-byte absolute address under a base relocation
	FormBranch26              // ARM64 B/BL imm26
	FormBranch19              // ARM64 B.cond/CBZ/CBNZ imm19
	FormBranch14              // ARM64 TBZ/TBNZ imm14
	FormADR                   // ARM64 ADR imm21
	FormADRP                  // ARM64 ADRP page + the low 12 bits in the instruction at PairOffset
	FormLiteral               // ARM64 LDR (literal) imm19
	FormTableLoad             // the instruction that addresses a jump table (see Table)
)

var formNames = [...]string{"none", "rel8", "rel32", "rip32", "abs64", "abs32", "branch26", "branch19", "branch14", "adr", "adrp", "literal", "table"}

// String returns the name ("rip32").
func (f Form) String() string { return enumString(formNames[:], uint8(f), "form") }

// MarshalText writes the name.
func (f Form) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText reads the name.
func (f *Form) UnmarshalText(b []byte) error { return enumParse(formNames[:], b, (*uint8)(f), "form") }

// Reference is one outside reference of a Changed function's new body.
type Reference struct {
	// Offset is the offset in the new body of the instruction (or, for
	// FormAbs64/FormAbs32, of the relocated field).
	Offset uint32 `json:"offset"`
	// Field is the offset in the new body of the bytes to rewrite (the
	// displacement, the relocated word; for ARM64 the instruction word).
	Field uint32 `json:"field"`
	// PairOffset is, for FormADRP (and an ADR a linker relaxed from one),
	// the offset of the instruction holding the low 12 bits (ADD, LDR, STR).
	// An ADRP whose page several instructions use appears once per user;
	// one user reached from several ADRPs (joined paths) once per ADRP.
	PairOffset uint32     `json:"pair_offset,omitempty"`
	Form       Form       `json:"form"`
	Kind       RefKind    `json:"kind"`
	Resolution Resolution `json:"resolution"`
	// NewTarget is the RVA the reference reaches in the new image.
	NewTarget uint32 `json:"new_target"`
	// Target is what it resolves to in the old image (ToFunction, ToData,
	// ToImport) or names it in the new image (ToNewFunction, CarryConstant,
	// NotHotPatchable).
	Target Target `json:"target"`
	// Indirect: the instruction reaches a pointer slot that holds Target (an
	// ELF GOT entry, a PLT stub), not Target itself: a relocator must point
	// it at a slot holding the old image's Target.
	Indirect bool `json:"indirect,omitempty"`
	// Content is the read-only bytes to carry (CarryConstant): a constant up
	// to the next symbol or referenced address (at most 256 bytes), or a
	// jump table's entries as the new image has them.
	Content []byte `json:"content,omitempty"`
	// Table describes a jump table (Kind RefJumpTable).
	Table *JumpTable `json:"table,omitempty"`
	// Why explains NotHotPatchable.
	Why string `json:"why,omitempty"`
}

// Target names what a reference reaches.
type Target struct {
	// Name is a function or data symbol name, "library!name" for an import,
	// or "section+0xoff" when no symbol covers the target.
	Name string `json:"name,omitempty"`
	// RVA is the start of the function, symbol or import slot (old image
	// for resolved references, new image otherwise).
	RVA uint32 `json:"rva"`
	// Offset is the distance of the target from RVA. For code that belongs
	// to no function and no symbol names, the target is named from the
	// function before it, and Offset may exceed that function's size.
	Offset int64 `json:"offset,omitempty"`
}

// JumpTable is a table of case targets inside the referencing function.
type JumpTable struct {
	// EntrySize is 1, 2, 4 or 8 bytes.
	EntrySize uint8 `json:"entry_size"`
	// Base says what an entry is added to: "table" (x86-64 gcc, clang
	// ARM64: target = table + entry), "label" (ARM64 gcc: target =
	// LabelOffset's address + entry*4), "absolute" (Go: the entry is the
	// target's address; a base relocation where the image has them).
	Base string `json:"base"`
	// LabelOffset is the body offset of the label ("label" base).
	LabelOffset uint32 `json:"label_offset,omitempty"`
	// Entries are the case targets as offsets into the body.
	Entries []uint32 `json:"entries"`
}

// Changed returns the Changed functions, in report order.
func (r *Report) Changed() []*Function { return r.WithStatus(Changed) }

// WithStatus returns the functions with status s, in report order.
func (r *Report) WithStatus(s Status) []*Function {
	var out []*Function
	for i := range r.Functions {
		if r.Functions[i].Status == s {
			out = append(out, &r.Functions[i])
		}
	}
	return out
}

// Lookup returns the entry for the function named name (new name first,
// then old name), or nil.
func (r *Report) Lookup(name string) *Function {
	for i := range r.Functions {
		if r.Functions[i].NewName == name {
			return &r.Functions[i]
		}
	}
	for i := range r.Functions {
		if r.Functions[i].OldName == name {
			return &r.Functions[i]
		}
	}
	return nil
}

// Summary is a short human summary: the counts, then one line per Changed,
// Added and Removed function (at most 20 each).
func (r *Report) Summary() string {
	var b strings.Builder
	c := r.Counts
	fmt.Fprintf(&b, "%s %s: %d -> %d functions: %d unchanged, %d changed, %d added, %d removed\n",
		r.New.Format, r.New.Arch, r.Old.Functions, r.New.Functions, c.Unchanged, c.Changed, c.Added, c.Removed)
	for _, s := range []Status{Changed, Added, Removed} {
		n := 0
		for i := range r.Functions {
			f := &r.Functions[i]
			if f.Status != s {
				continue
			}
			n++
			if n > 20 {
				continue
			}
			fmt.Fprintf(&b, "  %-9s %s", s, displayName(f))
			if s == Changed {
				kinds := make([]string, 0, len(f.Reasons))
				for _, rs := range f.Reasons {
					if len(kinds) == 0 || kinds[len(kinds)-1] != rs.Kind.String() {
						kinds = append(kinds, rs.Kind.String())
					}
				}
				fmt.Fprintf(&b, " (%s)", strings.Join(kinds, ", "))
				if !f.HotPatchable() {
					b.WriteString(" [not hot-patchable]")
				}
			}
			b.WriteByte('\n')
		}
		if n > 20 {
			fmt.Fprintf(&b, "  ... %d more %s\n", n-20, s)
		}
	}
	return b.String()
}

func displayName(f *Function) string {
	switch {
	case f.NewName != "" && f.OldName != "" && f.NewName != f.OldName:
		return f.OldName + " -> " + f.NewName
	case f.Name() != "":
		return f.Name()
	case f.Status == Removed:
		return fmt.Sprintf("sub_%x", f.OldRVA)
	default:
		return fmt.Sprintf("sub_%x", f.NewRVA)
	}
}

func summarise(img *image.Image) ImageSummary {
	s := ImageSummary{
		Format:        img.Format.String(),
		Arch:          archName(img.Arch),
		Functions:     len(img.Functions) - countGoBuildID(img),
		Machine:       img.Identity.Machine,
		TimeDateStamp: img.Identity.TimeDateStamp,
		CheckSum:      img.Identity.CheckSum,
		CodeHash:      hex.EncodeToString(img.Identity.CodeHash[:]),
	}
	if cv := img.Identity.CodeView; cv != nil {
		s.CodeView = fmt.Sprintf("%s-%d", hex.EncodeToString(cv.GUID[:]), cv.Age)
	}
	if len(img.Identity.BuildID) > 0 {
		s.BuildID = hex.EncodeToString(img.Identity.BuildID)
	}
	return s
}

func countGoBuildID(img *image.Image) int {
	if _, ok := img.FunctionByName("go:buildid"); ok {
		return 1
	}
	return 0
}

func archName(a image.Arch) string {
	switch a {
	case image.AMD64:
		return "amd64"
	case image.ARM64:
		return "arm64"
	}
	return "unknown"
}

func enumString(names []string, v uint8, what string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", what, v)
}

func enumParse(names []string, b []byte, dst *uint8, what string) error {
	for i, n := range names {
		if n == string(b) {
			*dst = uint8(i)
			return nil
		}
	}
	return fmt.Errorf("diff: unknown %s %q", what, b)
}
