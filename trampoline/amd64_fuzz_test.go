package trampoline

import (
	"errors"
	"testing"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// FuzzRelocateAMD64 decodes random bytes, keeps the run of valid
// instructions they start with, relocates it to a random address (optionally
// forced far, optionally through a Map) and checks with the decoder as
// oracle that every PC-relative target of the result is the mapped original
// target, that branches inside the run land on the right new boundary, and
// that everything else is copied unchanged. A refusal must be a typed error.
func FuzzRelocateAMD64(f *testing.F) {
	for _, r := range amdRuns {
		f.Add(r.code, uint64(0x5555_0000_0000), uint64(0x5555_0100_0000), byte(0))
		f.Add(r.code, uint64(0x5555_0000_0000), uint64(0x10_0000), byte(1))
	}
	f.Add(amdSwitchFunc(), uint64(0x401000), uint64(0x7fff_0000_0000), byte(2))
	f.Add(amdPrologue64, uint64(0x1_4000_1000), uint64(0x1_4000_1000+0x7fff_0000), byte(3))
	f.Fuzz(func(t *testing.T, data []byte, from, to uint64, flags byte) {
		if len(data) > 256 {
			data = data[:256]
		}
		n := 0
		for in, err := range dec.Walk(data, from) {
			if err != nil {
				break
			}
			n += in.Len
		}
		code := data[:n]
		if len(code) == 0 {
			return
		}
		opts := &Options{ForceFar: flags&1 != 0}
		if flags&2 != 0 {
			opts.Map = func(t uint64) (uint64, bool) {
				if t&1 == 0 {
					return t + 0x1234_5678_9000, true
				}
				return 0, false
			}
		}
		rel, err := Relocate(AMD64, code, from, to, opts)
		if err != nil {
			if !errors.Is(err, ErrUnrelocatable) {
				t.Fatalf("untyped refusal: %v", err)
			}
			return
		}
		if err := amdVerifyRelocation(code, from, to, opts, rel); err != nil {
			t.Fatalf("relocating % x from %#x to %#x: %v\nresult % x", code, from, to, err, rel.Code)
		}
	})
}

// amdPrologue64 is a realistic 64-byte x86-64 prologue (MSVC/clang shape):
// stack setup, a security cookie read [rip+x], a RIP-relative lea, a jcc
// rel8 inside the run and one out of it, and a call rel32.
var amdPrologue64 = []byte{
	0x48, 0x89, 0x5c, 0x24, 0x08, // mov [rsp+8],rbx
	0x57,                   // push rdi
	0x48, 0x83, 0xec, 0x30, // sub rsp,0x30
	0x48, 0x8b, 0x05, 0x00, 0x10, 0x00, 0x00, // mov rax,[rip+0x1000] (cookie)
	0x48, 0x33, 0xc4, // xor rax,rsp
	0x48, 0x89, 0x44, 0x24, 0x28, // mov [rsp+0x28],rax
	0x48, 0x8b, 0xd9, // mov rbx,rcx
	0x48, 0x85, 0xc9, // test rcx,rcx
	0x74, 0x0c, // je +12 (inside the run: to the cmp)
	0x48, 0x8d, 0x0d, 0x00, 0x20, 0x00, 0x00, // lea rcx,[rip+0x2000]
	0xe8, 0x00, 0x30, 0x00, 0x00, // call +0x3000
	0x83, 0x3b, 0x00, // cmp dword [rbx],0
	0x0f, 0x84, 0x00, 0x01, 0x00, 0x00, // je +0x100 (out of the run)
	0xf2, 0x0f, 0x10, 0x05, 0x00, 0x40, 0x00, 0x00, // movsd xmm0,[rip+0x4000]
	0x66, 0x90, // xchg ax,ax
}
