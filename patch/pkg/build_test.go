package pkg

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
)

// fixtureBuild is one committed C fixture pair, diffed and built.
type fixtureBuild struct {
	name     string
	old, new *image.Image
	rep      *diff.Report
	pkg      *Package
}

func buildFixture(t *testing.T, b *fixtures.Build) *fixtureBuild {
	t.Helper()
	old, err := image.Open(fixtures.Path(t, b.V1))
	require.NoError(t, err)
	nw, err := image.Open(fixtures.Path(t, b.V2))
	require.NoError(t, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(t, err)
	p, refused, err := Build(old, nw, rep, BuildOptions{Module: b.V1, Description: "fixture " + b.Name})
	require.NoError(t, err)
	require.Empty(t, refused)
	return &fixtureBuild{b.Name, old, nw, rep, p}
}

func committedBuilds(t *testing.T) []*fixtures.Build {
	var out []*fixtures.Build
	for _, b := range fixtures.GroundTruth(t).Builds {
		if b.Committed() && b.Program == "c" {
			out = append(out, b)
		}
	}
	require.Len(t, out, 4, "c/{windows,linux}/{amd64,arm64}")
	return out
}

// The package carries exactly the functions the ground truth says changed,
// plus the added function a changed one calls, each bound to its old bytes.
func TestBuildFixtures(t *testing.T) {
	truth := fixtures.GroundTruth(t)
	_, priv := testKey(1)
	pub := priv.Public().(ed25519.PublicKey)
	for _, b := range committedBuilds(t) {
		t.Run(b.Name, func(t *testing.T) {
			fb := buildFixture(t, b)
			p := fb.pkg
			var want, got, added []string
			for _, f := range truth.Program(b.Program).WithStatus(fixtures.Changed) {
				want = append(want, f.Name)
			}
			for _, f := range p.Functions {
				if f.New {
					added = append(added, f.Name)
					continue
				}
				got = append(got, f.Name)
				of, ok := fb.old.FunctionByName(f.Name)
				require.True(t, ok)
				require.Equal(t, of.RVA, f.OldRVA)
				code, _ := fb.old.Code(of)
				require.Equal(t, code[:len(f.PreImage)], f.PreImage)
				require.Equal(t, b.Function(f.Name).V1.Size, int(f.OldSize), "old size as the ground truth says")
			}
			slices.Sort(want)
			slices.Sort(got)
			require.Equal(t, want, got)
			require.Equal(t, []string{"fresh_step"}, added)
			require.Equal(t, fb.old.Identity.CodeHash, p.Base.Identity.CodeHash)
			require.Equal(t, uint32(1), p.Sequence)
			require.Equal(t, uint32(0), p.Requires)

			// Deterministic: built again from freshly parsed inputs, the
			// signed files are byte-identical; Load then Marshal is identity.
			again := buildFixture(t, b)
			require.NoError(t, p.Sign(priv))
			require.NoError(t, again.pkg.Sign(priv))
			b1, err := p.Marshal()
			require.NoError(t, err)
			b2, err := again.pkg.Marshal()
			require.NoError(t, err)
			require.Equal(t, b1, b2)
			q, err := Load(b1, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
			require.NoError(t, err)
			b3, err := q.Marshal()
			require.NoError(t, err)
			require.Equal(t, b1, b3)
			t.Logf("%d functions, %d constants, %d code relocs, %d bytes signed", len(p.Functions), len(p.Constants), len(p.Base.CodeRelocs), len(b1))
		})
	}
}

// Linked at arbitrary addresses, every reference the diff listed reaches,
// by the decoders' reading of the linked instruction, the address it must:
// the old image's function or data, the carried constant, the copied table.
func TestLinkFixturesDecodersAgree(t *testing.T) {
	for _, b := range committedBuilds(t) {
		t.Run(b.Name, func(t *testing.T) {
			fb := buildFixture(t, b)
			p := fb.pkg
			checked := checkLinkedReferences(t, p, fb.rep)
			t.Logf("%d references checked", checked)
		})
	}
}

// checkLinkedReferences links p far from its module and requires every
// reference rep lists for each replaced body to reach, by the decoders'
// reading of the linked instruction, the address it must (expectedTarget;
// a copied jump table: the start of the function's blob, where each
// function's single table goes). Added bodies are copied as they are. It
// returns how many references it checked.
func checkLinkedReferences(t *testing.T, p *Package, rep *diff.Report) int {
	t.Helper()
	const module = 0x7f0000000000
	base := uint64(module - 0x400000) // expectedTarget assumes this distance
	l, err := p.Link(module, base)
	require.NoError(t, err)
	lay := p.Layout()
	checked := 0
	for i, f := range p.Functions {
		blob := base + lay.Blobs[i]
		if f.New {
			require.Equal(t, f.Blob, l.Code[lay.Blobs[i]:lay.Blobs[i]+uint64(len(f.Blob))], "self-contained added body copied as is")
			continue
		}
		df := rep.Lookup(f.Name)
		require.NotNil(t, df)
		at := blob + uint64(f.Entry)
		require.Equal(t, l.Entries[i], at)
		code := l.Code[lay.Blobs[i]+uint64(f.Entry):]
		for _, r := range df.References {
			want := expectedTarget(t, p, l, lay, r)
			if r.Table != nil {
				want = blob
				checkCopiedTable(t, l.Code[lay.Blobs[i]:], at, blob, r.Table)
			}
			got := decodedTarget(t, p.Base.Arch, code, at, r)
			if r.Form == diff.FormRel8 {
				// Through the veneer: a jmp rel32 in the blob.
				v := got - blob
				got = decodedTarget(t, p.Base.Arch, l.Code[lay.Blobs[i]:], blob, diff.Reference{Offset: uint32(v), Field: uint32(v) + 1, Form: diff.FormRel32})
			}
			require.Equal(t, want, got, "%s +%#x %s %s", f.Name, r.Offset, r.Form, r.Target.Name)
			checked++
		}
	}
	return checked
}

// expectedTarget is where reference r of the new body must lead once linked.
func expectedTarget(t *testing.T, p *Package, l *Linked, lay Layout, r diff.Reference) uint64 {
	t.Helper()
	module := l.Base + 0x400000
	switch r.Resolution {
	case diff.ToFunction:
		if i := slices.IndexFunc(p.Functions, func(f Function) bool { return !f.New && f.OldRVA == r.Target.RVA }); i >= 0 {
			return l.Entries[i] // calls to a replaced function go straight to its new body
		}
		return module + uint64(int64(r.Target.RVA)+r.Target.Offset)
	case diff.ToData, diff.ToImport:
		return module + uint64(int64(r.Target.RVA)+r.Target.Offset)
	case diff.ToNewFunction:
		i := slices.IndexFunc(p.Functions, func(f Function) bool { return f.NewRVA == r.Target.RVA })
		require.GreaterOrEqual(t, i, 0)
		return l.Entries[i] + uint64(r.Target.Offset)
	case diff.CarryConstant:
		if r.Table != nil {
			return 0 // checked by the table test below
		}
		i := slices.IndexFunc(p.Constants, func(c Constant) bool { return string(c.Data) == string(r.Content) })
		require.GreaterOrEqual(t, i, 0)
		return l.Base + lay.Constants[i]
	}
	t.Fatalf("unexpected resolution %s", r.Resolution)
	return 0
}

// checkCopiedTable checks that the copied table at tableAt (bytes table) sends
// every case to its target in the code at codeAt.
func checkCopiedTable(t *testing.T, table []byte, codeAt, tableAt uint64, jt *diff.JumpTable) {
	t.Helper()
	for k, target := range jt.Entries {
		var v int64
		switch jt.EntrySize {
		case 1:
			v = int64(table[k])
		case 4:
			v = int64(int32(binary.LittleEndian.Uint32(table[4*k:])))
		default:
			t.Fatalf("entry size %d", jt.EntrySize)
		}
		var got uint64
		switch jt.Base {
		case "table":
			got = tableAt + uint64(v)
		case "label":
			got = codeAt + uint64(jt.LabelOffset) + uint64(v)*4
		}
		require.Equal(t, codeAt+uint64(target), got, "case %d", k)
	}
}

// decodedTarget decodes the linked instruction of r (placed at at+offset).
func decodedTarget(t *testing.T, a image.Arch, code []byte, at uint64, r diff.Reference) uint64 {
	t.Helper()
	if a == image.AMD64 {
		in, err := amd64.Decode(code[r.Offset:], at+uint64(r.Offset))
		require.NoError(t, err)
		require.NotEqual(t, amd64.RelNone, in.RelKind)
		return in.Target
	}
	w := binary.LittleEndian.Uint32(code[r.Field:])
	in := arm64.Decode(w, at+uint64(r.Field))
	if r.Form == diff.FormADRP || (r.Form == diff.FormADR && r.PairOffset != 0) {
		next := arm64.Decode(binary.LittleEndian.Uint32(code[r.PairOffset:]), at+uint64(r.PairOffset))
		pair, ok := arm64.PairTarget(in, next)
		require.True(t, ok, "%s / %s", in, next)
		return pair.Target
	}
	require.True(t, in.PCRelative(), "%s", in)
	return in.Target
}

func TestBuildRefusals(t *testing.T) {
	b := committedBuilds(t)[0]
	old, err := image.Open(fixtures.Path(t, b.V1))
	require.NoError(t, err)
	nw, err := image.Open(fixtures.Path(t, b.V2))
	require.NoError(t, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(t, err)

	// Make two functions unpatchable the way the diff reports it: a new
	// writable global in scale, thread-local storage in record.
	bad := *rep
	bad.Functions = slices.Clone(rep.Functions)
	for i := range bad.Functions {
		f := &bad.Functions[i]
		switch f.Name() {
		case "scale", "record":
			f.References = slices.Clone(f.References)
			f.References[0].Resolution = diff.NotHotPatchable
			f.References[0].Why = "new writable data counter_" + f.Name()
			f.References = append(f.References, diff.Reference{Offset: 1, Resolution: diff.NotHotPatchable, Why: "thread-local storage", Form: diff.FormNone})
		}
	}
	_, _, err = Build(old, nw, &bad, BuildOptions{})
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, ErrRefused)
	require.Equal(t, []string{"record", "scale"}, re.Functions())
	require.Len(t, re.Refused, 4, "every reason of every function: %v", re)
	require.Contains(t, err.Error(), "new writable data counter_scale")

	p, refused, err := Build(old, nw, &bad, BuildOptions{AllowPartial: true, Sequence: 3})
	require.NoError(t, err)
	require.Len(t, refused, 4)
	var names []string
	for _, f := range p.Functions {
		names = append(names, f.Name)
	}
	require.ElementsMatch(t, []string{"greeting", "slot_get", "dispatch", "fresh_step"}, names)
	require.Equal(t, uint32(3), p.Sequence)
	require.Equal(t, uint32(2), p.Requires)

	// The added callee carried only when self-contained: make dispatch call
	// a new function that is not in the report.
	bad2 := *rep
	bad2.Functions = slices.Clone(rep.Functions)
	for i := range bad2.Functions {
		f := &bad2.Functions[i]
		if f.Name() == "fresh_step" {
			f.NewRVA = 1 // no longer the callee's RVA
		}
	}
	_, _, err = Build(old, nw, &bad2, BuildOptions{})
	require.ErrorAs(t, err, &re)
	require.Equal(t, []string{"dispatch"}, re.Functions())
	require.Contains(t, re.Refused[0].Why, "fresh_step")

	// Too short: zero() is 3 bytes on x86-64 (xor eax,eax; ret).
	bad3 := *rep
	bad3.Functions = slices.Clone(rep.Functions)
	zero, ok := old.FunctionByName("zero")
	require.True(t, ok)
	for i := range bad3.Functions {
		f := &bad3.Functions[i]
		if f.Name() == "greeting" {
			f.OldRVA, f.OldSize = zero.RVA, zero.Size
		}
	}
	_, _, err = Build(old, nw, &bad3, BuildOptions{})
	require.ErrorAs(t, err, &re)
	require.Equal(t, []string{"greeting"}, re.Functions())
	require.Contains(t, re.Refused[0].Why, "shorter than the 5-byte entry jump")

	none := *rep
	none.Functions = nil
	_, _, err = Build(old, nw, &none, BuildOptions{})
	require.ErrorIs(t, err, ErrNothingToPatch)
	// A report of other images.
	_, _, err = Build(nw, old, rep, BuildOptions{})
	require.ErrorIs(t, err, ErrBuildInput)

	// Two changed static functions of one name (in different files) keep
	// unique names in the package.
	dup := *rep
	dup.Functions = slices.Clone(rep.Functions)
	for i := range dup.Functions {
		f := &dup.Functions[i]
		if f.Name() == "scale" || f.Name() == "record" {
			f.OldName, f.NewName = "helper", "helper"
		}
	}
	p, _, err = Build(old, nw, &dup, BuildOptions{})
	require.NoError(t, err)
	sc, rc := p.Function(fmt.Sprintf("helper@%x", mustFunc(t, old, "scale").RVA)), p.Function(fmt.Sprintf("helper@%x", mustFunc(t, old, "record").RVA))
	require.NotNil(t, sc)
	require.NotNil(t, rc)
	require.Equal(t, mustFunc(t, old, "scale").Size, sc.OldSize)
	_, _, err = Build(nil, nw, rep, BuildOptions{})
	require.ErrorIs(t, err, ErrBuildInput)
}

func mustFunc(t *testing.T, img *image.Image, name string) *image.Function {
	t.Helper()
	f, ok := img.FunctionByName(name)
	require.True(t, ok, name)
	return f
}

// Go binaries: every changed body is refused (moving Go code out of the
// runtime's pclntab breaks its unwinder).
func TestBuildRefusesGo(t *testing.T) {
	old, err := image.Open(fixtures.GoProgram(t, "v1", "linux", "amd64"))
	require.NoError(t, err)
	nw, err := image.Open(fixtures.GoProgram(t, "v2", "linux", "amd64"))
	require.NoError(t, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(t, err)
	require.NotEmpty(t, rep.Changed())
	_, _, err = Build(old, nw, rep, BuildOptions{})
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.Len(t, re.Functions(), len(rep.Changed()))
	require.Contains(t, re.Refused[0].Why, "Go-compiled")
}
