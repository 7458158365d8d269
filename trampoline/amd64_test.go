package trampoline

import (
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// TestAMD64JumpRoundTrip encodes entry jumps at the edges of rel32 reach and
// decodes them back with the decoder (x86asm) as oracle.
func TestAMD64JumpRoundTrip(t *testing.T) {
	const from = 0x7fff_0000_1000
	cases := []struct {
		name string
		to   uint64
		size int
	}{
		{"zero", from + 5, 5},
		{"self", from, 5},
		{"max forward", from + 5 + math.MaxInt32, 5},
		{"one past max forward", from + 5 + math.MaxInt32 + 1, 14},
		{"max backward", from + 5 - 1<<31, 5},
		{"one past max backward", from + 5 - 1<<31 - 1, 14},
		{"far away", 0x1000, 14},
		{"top of address space", math.MaxUint64 - 7, 14},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := JumpSize(AMD64, from, c.to)
			require.NoError(t, err)
			require.Equal(t, c.size, n)
			j, err := EncodeJump(AMD64, from, c.to)
			require.NoError(t, err)
			require.Len(t, j, c.size)
			require.Equal(t, c.size == 5, c.size == NearJumpSize(AMD64))
			require.Equal(t, amdJumpTarget(t, j, from), c.to)

			far, err := EncodeFarJump(AMD64, from, c.to)
			require.NoError(t, err)
			require.Len(t, far, FarJumpSize(AMD64))
			require.Equal(t, c.to, amdJumpTarget(t, far, from))
		})
	}
	_, err := amd64Code{}.jump(from, 0x1000, false)
	require.ErrorIs(t, err, ErrUnrelocatable)
	require.NoError(t, CheckFits(AMD64, "f", from, 5, from+100))
	var ts *TooShortError
	require.ErrorAs(t, CheckFits(AMD64, "tiny", from, 4, from+100), &ts)
	require.Equal(t, "tiny", ts.Function)
	require.ErrorIs(t, CheckFits(AMD64, "f", from, 13, 0x1000), ErrTooShort)
}

// amdJumpTarget decodes an entry jump and returns where it goes.
func amdJumpTarget(t *testing.T, j []byte, pc uint64) uint64 {
	t.Helper()
	in, err := dec.Decode(j, pc)
	require.NoError(t, err)
	require.Equal(t, x86asm.JMP, in.Op)
	switch in.RelKind {
	case dec.Rel32:
		require.Equal(t, 5, in.Len)
		return in.Target
	case dec.RIPDisp32:
		require.Equal(t, in.End(), in.Target, "jmp [rip+0]")
		require.Len(t, j, in.Len+8)
		return binary.LittleEndian.Uint64(j[in.Len:])
	}
	t.Fatalf("unexpected jump %v", in)
	return 0
}

// amdRuns are hand-encoded instruction runs covering every PC-relative class
// (encodings checked with llvm-mc; the decoder round trip below re-checks).
var amdRuns = []struct {
	name string
	code []byte
}{
	{"mov rax,[rip+0x100]", []byte{0x48, 0x8b, 0x05, 0x00, 0x01, 0x00, 0x00}},
	{"mov r12,[rip-0x100] (REX.R)", []byte{0x4c, 0x8b, 0x25, 0x00, 0xff, 0xff, 0xff}},
	{"mov eax,[rip+x] with REX.B set (ignored for rip)", []byte{0x41, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}},
	{"lea rcx,[rip+0x1000]", []byte{0x48, 0x8d, 0x0d, 0x00, 0x10, 0x00, 0x00}},
	{"lea r9,[rip+0x1000]", []byte{0x4c, 0x8d, 0x0d, 0x00, 0x10, 0x00, 0x00}},
	{"lea ecx,[rip+0x1000]", []byte{0x8d, 0x0d, 0x00, 0x10, 0x00, 0x00}},
	{"lea r10d,[rip+0x1000]", []byte{0x44, 0x8d, 0x15, 0x00, 0x10, 0x00, 0x00}},
	{"cmp qword [rip+4],5", []byte{0x48, 0x83, 0x3d, 0x04, 0x00, 0x00, 0x00, 0x05}},
	{"cmp dword [rip+4],0x12345678", []byte{0x81, 0x3d, 0x04, 0x00, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12}},
	{"mov [rip+8],rsi", []byte{0x48, 0x89, 0x35, 0x08, 0x00, 0x00, 0x00}},
	{"mov [rip+8],rdi (scratch must avoid rsi... and rdi)", []byte{0x48, 0x89, 0x3d, 0x08, 0x00, 0x00, 0x00}},
	{"lock cmpxchg [rip+8],rcx", []byte{0xf0, 0x48, 0x0f, 0xb1, 0x0d, 0x08, 0x00, 0x00, 0x00}},
	{"call [rip+0x20]", []byte{0xff, 0x15, 0x20, 0x00, 0x00, 0x00}},
	{"jmp [rip+0x20] (import thunk)", []byte{0xff, 0x25, 0x20, 0x00, 0x00, 0x00}},
	{"movsd xmm0,[rip+0x20]", []byte{0xf2, 0x0f, 0x10, 0x05, 0x20, 0x00, 0x00, 0x00}},
	{"movaps xmm9,[rip+0x20]", []byte{0x44, 0x0f, 0x28, 0x0d, 0x20, 0x00, 0x00, 0x00}},
	{"pshufd xmm0,[rip+0x20],0x1b (imm after disp)", []byte{0x66, 0x0f, 0x70, 0x05, 0x20, 0x00, 0x00, 0x00, 0x1b}},
	{"vmovdqu ymm0,[rip+0x20] (VEX2)", []byte{0xc5, 0xfe, 0x6f, 0x05, 0x20, 0x00, 0x00, 0x00}},
	{"vpbroadcastd ymm8,[rip+0x20] (VEX3)", []byte{0xc4, 0x62, 0x7d, 0x58, 0x05, 0x20, 0x00, 0x00, 0x00}},
	{"vmovdqu64 zmm0,[rip+0x20] (EVEX)", []byte{0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x05, 0x20, 0x00, 0x00, 0x00}},
	{"jmp rel8 out", []byte{0xeb, 0x40}},
	{"jmp rel32 out", []byte{0xe9, 0x00, 0x10, 0x00, 0x00}},
	{"jne rel8 out", []byte{0x75, 0x7f}},
	{"jl rel8 backward out", []byte{0x7c, 0x80}},
	{"jle rel32 out", []byte{0x0f, 0x8e, 0x00, 0x00, 0x01, 0x00}},
	{"call rel32 out", []byte{0xe8, 0x00, 0x00, 0x10, 0x00}},
	{"loop out", []byte{0xe2, 0x10}},
	{"loope out", []byte{0xe1, 0x10}},
	{"loopne out", []byte{0xe0, 0x10}},
	{"jrcxz out", []byte{0xe3, 0x10}},
	{"jecxz out", []byte{0x67, 0xe3, 0x10}},
	{"xbegin out", []byte{0xc7, 0xf8, 0x00, 0x01, 0x00, 0x00}},
	{"endbr64; push rbp; mov rbp,rsp; sub rsp,0x20", []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20}},
	{"internal: test edi,edi; je +2 (to end); jmp -6 (to start)", []byte{0x85, 0xff, 0x74, 0x02, 0xeb, 0xfa}},
	{"internal: jrcxz to self", []byte{0x90, 0xe3, 0xfe}},
	{"internal: call +0 ... to the next-next instruction", []byte{0xe8, 0x01, 0x00, 0x00, 0x00, 0xcc, 0x58}},
	{"internal: lea rax,[rip+0] to the end", []byte{0x90, 0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x00}},
	{"lea rax,[rip-7] (own first byte: the function's address, kept)", []byte{0x48, 0x8d, 0x05, 0xf9, 0xff, 0xff, 0xff}},
	{"mov rax,fs:[rip+x] (segment base + offset: not mapped)", []byte{0x64, 0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00}},
	{"hint nop [rip+x]", []byte{0x0f, 0x1e, 0x05, 0x10, 0x00, 0x00, 0x00}},
}

// TestAMD64RelocateForms relocates each run near, far (beyond 2 GiB), with
// ForceFar, and through a Map, and checks the result with the decoder.
func TestAMD64RelocateForms(t *testing.T) {
	const from = 0x5555_0000_0000
	mapped := func(t uint64) (uint64, bool) {
		if t >= from && t < from+0x100 {
			return 0, false
		}
		return t ^ 0x7000_0000, true
	}
	modes := []struct {
		name string
		to   uint64
		opts Options
	}{
		{"near", from + 0x100_0000, Options{}},
		{"near-backward", from - 0x7000_0000, Options{}},
		{"far", from + 0x10_0000_0000, Options{}},
		{"far-below", 0x10_0000, Options{}},
		{"force-far", from + 0x1000, Options{ForceFar: true}},
		{"map", from + 0x1000, Options{Map: mapped}},
		{"map-far", from + 0x20_0000_0000, Options{Map: mapped}},
	}
	for _, r := range amdRuns {
		for _, m := range modes {
			t.Run(r.name+"/"+m.name, func(t *testing.T) {
				opts := m.opts
				rel, err := Relocate(AMD64, r.code, from, m.to, &opts)
				if errors.Is(err, ErrUnrelocatable) && (r.name == "xbegin out") && (m.name != "near" && m.name != "near-backward" && m.name != "map" && m.name != "force-far") {
					return // xbegin has no absolute form: refusing it far is right
				}
				require.NoError(t, err)
				require.NoError(t, amdVerifyRelocation(r.code, from, m.to, &opts, rel))
			})
		}
	}
}

// TestAMD64RelocateReachEdges places a rel32 branch and a [rip+x] operand so
// that the relocated displacement is exactly at the int32 limits, then one
// byte past them: the near form must be kept up to the edge and the far form
// chosen past it.
func TestAMD64RelocateReachEdges(t *testing.T) {
	const from = 0x4000_0000_0000
	const tgt = from + 0x10                                 // jmp rel32 target / rip operand target
	jmp := []byte{0xe9, 0x0b, 0x00, 0x00, 0x00}             // jmp from+0x10
	mov := []byte{0x48, 0x8b, 0x05, 0x09, 0x00, 0x00, 0x00} // mov rax,[from+0x10]
	jcc8 := []byte{0x74, 0x0e}                              // je from+0x10
	for _, c := range []struct {
		name     string
		code     []byte
		nearSize int
	}{{"jmp", jmp, 5}, {"mov", mov, 7}, {"je rel8", jcc8, 6}} {
		for _, edge := range []struct {
			name string
			to   uint64 // so that tgt - (to+nearSize) hits the edge
			near bool
		}{
			{"max", tgt - math.MaxInt32, true},
			{"max+1", tgt - math.MaxInt32 - 1, false},
			{"min", tgt + 1<<31, true},
			{"min-1", tgt + 1<<31 + 1, false},
		} {
			t.Run(c.name+"/"+edge.name, func(t *testing.T) {
				to := edge.to - uint64(c.nearSize)
				rel, err := Relocate(AMD64, c.code, from, to, nil)
				require.NoError(t, err)
				require.NoError(t, amdVerifyRelocation(c.code, from, to, nil, rel))
				if edge.near {
					require.Len(t, rel.Code, c.nearSize)
				} else {
					require.Greater(t, len(rel.Code), c.nearSize)
				}
			})
		}
	}
	// rel8 edges inside the run: +127 and -128 stay internal and widen.
	code := make([]byte, 0, 300)
	code = append(code, 0xeb, 0x7f) // jmp +127
	for len(code) < 2+127 {
		code = append(code, 0x90)
	}
	code = append(code, 0xeb, 0x80) // jmp -128: back to offset 129+2-128 = 3
	rel, err := Relocate(AMD64, code, from, from+0x1000, nil)
	require.NoError(t, err)
	require.NoError(t, amdVerifyRelocation(code, from, from+0x1000, nil, rel))
	require.Equal(t, 2, rel.Rewritten)
}

// TestAMD64Refusals: what must be refused, by name.
func TestAMD64Refusals(t *testing.T) {
	const from = 0x6000_0000_0000
	far := uint64(0x10_0000)
	cases := []struct {
		name string
		code []byte
		to   uint64
		opts *Options
		is   error
		as   any
	}{
		{name: "branch into the middle of an instruction", code: []byte{0xeb, 0x01, 0x48, 0x89, 0xe5}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "call $+5 reads its own address", code: []byte{0xe8, 0x00, 0x00, 0x00, 0x00, 0x58}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "[eip+x]", code: []byte{0x67, 0x8b, 0x05, 0x01, 0x00, 0x00, 0x00}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "xbegin far", code: []byte{0xc7, 0xf8, 0x00, 0x01, 0x00, 0x00}, to: far, is: ErrUnrelocatable},
		{name: "push [rip+x] far", code: []byte{0xff, 0x35, 0x10, 0x00, 0x00, 0x00}, to: far, is: ErrUnrelocatable},
		{name: "lcall [rip+x] far (found by FuzzRelocateAMD64)", code: []byte{0xff, 0x1d, 0x30, 0x30, 0x30, 0x30}, to: far, is: ErrUnrelocatable},
		{name: "mov rsp,[rip+x] far", code: []byte{0x48, 0x8b, 0x25, 0x10, 0x00, 0x00, 0x00}, to: far, is: ErrUnrelocatable},
		{name: "read of the moved bytes", code: []byte{0x48, 0x8b, 0x05, 0xf9, 0xff, 0xff, 0xff}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "undecodable", code: []byte{0x0f, 0x04}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "truncated", code: []byte{0xe8, 0x00}, to: from + 0x100, is: ErrUnrelocatable},
		{name: "branch from the function into the moved bytes",
			// push rbp; mov rbp,rsp | ...; jmp back to mov (offset 1)
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x90, 0xeb, 0xf9, 0xc3}, FunctionAddr: from},
			is:   ErrBranchIntoMoved, as: new(*BranchIntoError)},
		{name: "lea of a label inside the moved bytes from the function",
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x48, 0x8d, 0x05, 0xf5, 0xff, 0xff, 0xff, 0xc3}, FunctionAddr: from},
			is:   ErrBranchIntoMoved},
		{name: "jump table (gcc/clang shape) without targets",
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: amdSwitchFunc(), FunctionAddr: from},
			is:   ErrJumpTable, as: new(*JumpTableError)},
		{name: "jump table with a target inside the moved bytes",
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: amdSwitchFunc(), FunctionAddr: from, JumpTableTargets: []uint64{from + 0x20, from + 1}},
			is:   ErrBranchIntoMoved},
		{name: "jmp [base+idx*8] absolute table",
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0xff, 0x24, 0xc5, 0x00, 0x10, 0x00, 0x00, 0xc3}, FunctionAddr: from},
			is:   ErrJumpTable},
		{name: "function that does not decode",
			code: []byte{0x55, 0x48, 0x89, 0xe5, 0x90},
			to:   from + 0x100,
			opts: &Options{Function: []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x0f, 0x04, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0xc3}, FunctionAddr: from},
			is:   ErrUnrelocatable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Relocate(AMD64, c.code, from, c.to, c.opts)
			require.ErrorIs(t, err, c.is)
			switch as := c.as.(type) {
			case **BranchIntoError:
				require.ErrorAs(t, err, as)
				require.Greater(t, (*as).To, uint64(from))
			case **JumpTableError:
				require.ErrorAs(t, err, as)
				require.NotZero(t, (*as).Dispatch)
			}
		})
	}

	t.Run("jump table with targets outside the moved bytes is accepted", func(t *testing.T) {
		code := []byte{0x55, 0x48, 0x89, 0xe5, 0x90}
		opts := &Options{Function: amdSwitchFunc(), FunctionAddr: from, JumpTableTargets: []uint64{from + 0x20, from + 0x22, from}}
		rel, err := Relocate(AMD64, code, from, from+0x100, opts)
		require.NoError(t, err)
		require.Equal(t, code, rel.Code)
	})
	t.Run("computed tail call is not a jump table", func(t *testing.T) {
		// mov rax,[rdi+rsi*8]; mov rax,[rax+8]; jmp rax
		fn := []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0x48, 0x8b, 0x04, 0xf7, 0x48, 0x8b, 0x40, 0x08, 0xff, 0xe0}
		_, err := Relocate(AMD64, fn[:5], from, from+0x100, &Options{Function: fn, FunctionAddr: from})
		require.NoError(t, err)
	})
	t.Run("branch to the first byte is allowed (recursion)", func(t *testing.T) {
		fn := []byte{0x55, 0x48, 0x89, 0xe5, 0x90, 0xe8, 0xf6, 0xff, 0xff, 0xff, 0xeb, 0xf4, 0xc3}
		_, err := Relocate(AMD64, fn[:5], from, from+0x100, &Options{Function: fn, FunctionAddr: from})
		require.NoError(t, err)
	})
}

// amdSwitchFunc is a gcc-shaped switch: push rbp; mov rbp,rsp; nop; cmp edi,3;
// ja +x; lea rdx,[rip+table]; movsxd rax,[rdx+rdi*4]; add rax,rdx; jmp rax.
func amdSwitchFunc() []byte {
	return []byte{
		0x55, 0x48, 0x89, 0xe5, 0x90,
		0x83, 0xff, 0x03, // cmp edi,3
		0x77, 0x10, // ja +16
		0x48, 0x8d, 0x15, 0x00, 0x01, 0x00, 0x00, // lea rdx,[rip+0x100]
		0x48, 0x63, 0x04, 0xba, // movsxd rax,[rdx+rdi*4]
		0x48, 0x01, 0xd0, // add rax,rdx
		0xff, 0xe0, // jmp rax
		0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3, 0xc3,
	}
}

// TestAMD64Prologue: whole instructions covering the jump; a function that
// ends first is refused.
func TestAMD64Prologue(t *testing.T) {
	cases := []struct {
		name string
		code []byte
		need int
		want int
		is   error
	}{
		{"push rbp; mov rbp,rsp; sub rsp,0x20", []byte{0x55, 0x48, 0x89, 0xe5, 0x48, 0x83, 0xec, 0x20}, 5, 8, nil},
		{"exactly 5", []byte{0x48, 0x89, 0xe5, 0x55, 0x55, 0xc3}, 5, 5, nil},
		{"jmp rel32 thunk", []byte{0xe9, 0x00, 0x01, 0x00, 0x00, 0xcc}, 5, 5, nil},
		{"jmp [rip] thunk", []byte{0xff, 0x25, 0x00, 0x01, 0x00, 0x00, 0xcc}, 5, 6, nil},
		{"ret inside the first 5 bytes", []byte{0x31, 0xc0, 0xc3, 0xcc, 0xcc, 0xcc}, 5, 0, ErrTooShort},
		{"int3 inside the first 5 bytes", []byte{0x90, 0xcc, 0x90, 0x90, 0x90, 0x90}, 5, 0, ErrTooShort},
		{"jmp rel8 at the entry", []byte{0xeb, 0x10, 0x90, 0x90, 0x90, 0x90}, 5, 0, ErrTooShort},
		{"jmp rel32 thunk with far jump", []byte{0xe9, 0x00, 0x01, 0x00, 0x00, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc}, 14, 0, ErrTooShort},
		{"short code", []byte{0x90, 0x90}, 5, 0, ErrTooShort},
		{"undecodable", []byte{0x0f, 0x04, 0x90, 0x90, 0x90, 0x90}, 5, 0, ErrUnrelocatable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := PrologueLength(AMD64, c.code, 0x401000, c.need)
			if c.is != nil {
				require.ErrorIs(t, err, c.is)
				return
			}
			require.NoError(t, err)
			require.Equal(t, c.want, n)
		})
	}
}

// TestAMD64DetourPlan checks NewDetour's bytes without executing them.
func TestAMD64DetourPlan(t *testing.T) {
	const target, repl, tramp = 0x401000, 0x402000, 0x403000
	// endbr64; push rbp; mov rbp,rsp; mov rax,[rip+0x100]; ...; ret
	fn := []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x48, 0x8b, 0x05, 0x00, 0x01, 0x00, 0x00, 0x5d, 0xc3}
	d, err := NewDetour(AMD64, target, fn, repl, tramp, nil)
	require.NoError(t, err)
	require.Equal(t, fn[:15], d.Original, "endbr64 + jmp rel32 need 9 bytes: whole instructions give 15")
	require.Equal(t, fn[:4], d.Entry[:4], "endbr64 stays first at the entry")
	require.Equal(t, uint64(repl), amdJumpTarget(t, d.Entry[4:9], target+4))
	require.Equal(t, []byte{0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc}, d.Entry[9:])
	require.Len(t, d.Entry, len(d.Original))
	require.Equal(t, fn[:4], d.Code[:4], "the trampoline starts with endbr64 too")
	rel := &Relocation{Code: d.Code[:15], Boundaries: d.Boundaries}
	require.NoError(t, amdVerifyRelocation(fn[:15], target, tramp, nil, rel))
	require.Equal(t, uint64(target+15), amdJumpTarget(t, d.Code[15:], tramp+15))

	_, err = NewDetour(AMD64, target, []byte{0x31, 0xc0, 0xc3, 0xcc, 0xcc, 0xcc, 0xcc}, repl, tramp, nil)
	require.ErrorIs(t, err, ErrTooShort)

	// A loop head right after ENDBR64 is where the entry jump starts: a
	// back edge to it reaches the jump as a branch to the entry would
	// (allowed); one to the next instruction lands inside it (refused).
	// endbr64; L: add rax,1; dec rdi; jne L; ret
	loop := []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xc0, 0x01, 0x48, 0xff, 0xcf, 0x75, 0xf7, 0xc3}
	_, err = NewDetour(AMD64, target, loop, repl, tramp, nil)
	require.NoError(t, err)
	loop[12] = 0xfb // jne to the dec, inside the moved bytes
	_, err = NewDetour(AMD64, target, loop, repl, tramp, nil)
	require.ErrorIs(t, err, ErrBranchIntoMoved)
}
