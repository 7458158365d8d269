package amd64

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"
)

// TestDecodeTraps pins each x86asm trap the wrapper fixes, with hand-written
// byte sequences (encodings checked against the Intel SDM and llvm-mc).
func TestDecodeTraps(t *testing.T) {
	const pc = 0x1000
	tests := []struct {
		name    string
		code    []byte
		err     error // sentinel expected, nil for success
		len     int
		op      x86asm.Op
		flow    Flow
		kind    RelKind
		relOff  int
		target  uint64
		text    string // substring of String(), when set
		memBase x86asm.Reg
	}{
		// Trap 1: x86asm returns Op==0, err==nil for truncated input.
		{name: "truncated call rel32", code: []byte{0xe8, 0x00}, err: ErrTruncated},
		{name: "truncated mov rip", code: []byte{0x48, 0x8b, 0x05, 0x01, 0x02}, err: ErrTruncated},
		{name: "lone REX", code: []byte{0x48}, err: ErrTruncated},
		{name: "lone prefix", code: []byte{0x66}, err: ErrTruncated},
		{name: "empty", code: nil, err: ErrTruncated},
		{name: "truncated endbr64", code: []byte{0xf3, 0x0f, 0x1e}, err: ErrTruncated},
		{name: "invalid opcode", code: []byte{0x0f, 0x04, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90}, err: ErrInvalid},
		{name: "invalid 06 in 64-bit mode", code: []byte{0x06, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90}, err: ErrInvalid},

		// Trap 2: disp32 is signed; x86asm keeps it zero-extended.
		{name: "mov rax,[rip-0x10]", code: []byte{0x48, 0x8b, 0x05, 0xf0, 0xff, 0xff, 0xff}, len: 7, op: x86asm.MOV,
			kind: RIPDisp32, relOff: 3, target: pc + 7 - 0x10, memBase: x86asm.RIP},
		{name: "lea rcx,[rip+0x7fffffff]", code: []byte{0x48, 0x8d, 0x0d, 0xff, 0xff, 0xff, 0x7f}, len: 7, op: x86asm.LEA,
			kind: RIPDisp32, relOff: 3, target: pc + 7 + 0x7fffffff, memBase: x86asm.RIP},
		{name: "lea rcx,[rip-0x80000000]", code: []byte{0x48, 0x8d, 0x0d, 0x00, 0x00, 0x00, 0x80}, len: 7, op: x86asm.LEA,
			kind: RIPDisp32, relOff: 3, target: addS(pc+7, -0x80000000), memBase: x86asm.RIP},
		{name: "jmp rel32 backward", code: []byte{0xe9, 0xfb, 0xff, 0xff, 0xff}, len: 5, op: x86asm.JMP, flow: Jump,
			kind: Rel32, relOff: 1, target: pc},
		{name: "jne rel8 backward", code: []byte{0x75, 0xfe}, len: 2, op: x86asm.JNE, flow: CondJump, kind: Rel8, relOff: 1, target: pc},

		// Trap 3: VEX/EVEX RIP-relative operands decode as absolute, PCRel=0.
		{name: "vmovdqu ymm0,[rip+1] (VEX2)", code: []byte{0xc5, 0xfe, 0x6f, 0x05, 0x01, 0x00, 0x00, 0x00}, len: 8, op: x86asm.VMOVDQU,
			kind: RIPDisp32, relOff: 4, target: pc + 8 + 1, memBase: x86asm.RIP, text: "RIP+0x1"},
		{name: "vbroadcastss ymm0,[rip-4] (VEX3)", code: []byte{0xc4, 0xe2, 0x7d, 0x18, 0x05, 0xfc, 0xff, 0xff, 0xff}, len: 9, op: x86asm.VBROADCASTSS,
			kind: RIPDisp32, relOff: 5, target: pc + 9 - 4, memBase: x86asm.RIP},
		{name: "vinsertf128 ymm0,ymm0,[rip+1],1 (imm after disp)", code: []byte{0xc4, 0xe3, 0x7d, 0x18, 0x05, 0x01, 0x00, 0x00, 0x00, 0x01}, len: 10,
			op: x86asm.VINSERTF128, kind: RIPDisp32, relOff: 5, target: pc + 10 + 1, memBase: x86asm.RIP},
		{name: "vmovdqu64 zmm0,[rip+1] (EVEX)", code: []byte{0x62, 0xf1, 0xfe, 0x48, 0x6f, 0x05, 0x01, 0x00, 0x00, 0x00}, len: 10, op: x86asm.VMOVDQU64,
			kind: RIPDisp32, relOff: 6, target: pc + 10 + 1, memBase: x86asm.RIP},
		{name: "vmovdqu ymm0,[rax+1] stays absolute-free", code: []byte{0xc5, 0xfe, 0x6f, 0x40, 0x01}, len: 5, op: x86asm.VMOVDQU, memBase: x86asm.RAX},

		// Trap 4: VZEROUPPER/VZEROALL have no ModR/M; x86asm eats one.
		{name: "vzeroupper; nop", code: []byte{0xc5, 0xf8, 0x77, 0x90}, len: 3, op: x86asm.VZEROUPPER},
		{name: "vzeroupper; mov (modrm-like next byte)", code: []byte{0xc5, 0xf8, 0x77, 0x48, 0x89, 0xe5}, len: 3, op: x86asm.VZEROUPPER},
		{name: "vzeroall", code: []byte{0xc5, 0xfc, 0x77, 0xc3}, len: 3, op: x86asm.VZEROALL},
		{name: "vzeroupper VEX3", code: []byte{0xc4, 0xe1, 0x78, 0x77, 0xc3}, len: 4, op: x86asm.VZEROUPPER},

		// Trap 5: ENDBR64/ENDBR32 are unknown to x86asm (Op 0).
		{name: "endbr64", code: []byte{0xf3, 0x0f, 0x1e, 0xfa, 0x55}, len: 4, op: x86asm.NOP, text: "ENDBR64"},
		{name: "endbr32", code: []byte{0xf3, 0x0f, 0x1e, 0xfb}, len: 4, op: x86asm.NOP, text: "ENDBR32"},
		{name: "hint nop 0f 1e rip", code: []byte{0x0f, 0x1e, 0x05, 0x10, 0x00, 0x00, 0x00}, len: 7, op: x86asm.NOP,
			kind: RIPDisp32, relOff: 3, target: pc + 7 + 0x10, memBase: x86asm.RIP},

		// Trap 6: [eip+disp32] (0x67) is PC-relative too, PCRel=0 in x86asm.
		{name: "mov eax,[eip+1]", code: []byte{0x67, 0x8b, 0x05, 0x01, 0x00, 0x00, 0x00}, len: 7, op: x86asm.MOV,
			kind: EIPDisp32, relOff: 3, target: pc + 7 + 1, memBase: x86asm.EIP},

		// Trap 7: legacy 0F 38 instructions x86asm lacks (ADCX/ADOX in Go's crypto).
		{name: "adcx r13,rbx", code: []byte{0x66, 0x4c, 0x0f, 0x38, 0xf6, 0xeb, 0xf3}, len: 6, text: "ADCX"},
		{name: "adox r13,[rip+8]", code: []byte{0xf3, 0x4c, 0x0f, 0x38, 0xf6, 0x2d, 0x08, 0x00, 0x00, 0x00}, len: 10, text: "ADOX [RIP+0x8]",
			kind: RIPDisp32, relOff: 6, target: pc + 10 + 8, memBase: x86asm.RIP},

		// Flow classes.
		{name: "call rel32", code: []byte{0xe8, 0x00, 0x00, 0x00, 0x00}, len: 5, op: x86asm.CALL, flow: Call, kind: Rel32, relOff: 1, target: pc + 5},
		{name: "call [rip+8]", code: []byte{0xff, 0x15, 0x08, 0x00, 0x00, 0x00}, len: 6, op: x86asm.CALL, flow: IndirectCall,
			kind: RIPDisp32, relOff: 2, target: pc + 6 + 8, memBase: x86asm.RIP},
		{name: "jmp [rip+0]", code: []byte{0xff, 0x25, 0x00, 0x00, 0x00, 0x00}, len: 6, op: x86asm.JMP, flow: IndirectJump,
			kind: RIPDisp32, relOff: 2, target: pc + 6, memBase: x86asm.RIP},
		{name: "notrack jmp rax", code: []byte{0x3e, 0xff, 0xe0}, len: 3, op: x86asm.JMP, flow: IndirectJump},
		{name: "loop", code: []byte{0xe2, 0xfe}, len: 2, op: x86asm.LOOP, flow: Loop, kind: Rel8, relOff: 1, target: pc},
		{name: "jrcxz", code: []byte{0xe3, 0x05}, len: 2, op: x86asm.JRCXZ, flow: Loop, kind: Rel8, relOff: 1, target: pc + 7},
		{name: "jecxz", code: []byte{0x67, 0xe3, 0x05}, len: 3, op: x86asm.JECXZ, flow: Loop, kind: Rel8, relOff: 2, target: pc + 8},
		{name: "ret", code: []byte{0xc3}, len: 1, op: x86asm.RET, flow: Ret},
		{name: "bnd ret", code: []byte{0xf2, 0xc3}, len: 2, op: x86asm.RET, flow: Ret},
		{name: "ret imm16", code: []byte{0xc2, 0x08, 0x00}, len: 3, op: x86asm.RET, flow: Ret},
		{name: "int3", code: []byte{0xcc}, len: 1, op: x86asm.INT, flow: Trap},
		{name: "ud2", code: []byte{0x0f, 0x0b}, len: 2, op: x86asm.UD2, flow: Trap},
		{name: "xbegin", code: []byte{0xc7, 0xf8, 0x10, 0x00, 0x00, 0x00}, len: 6, op: x86asm.XBEGIN, kind: Rel32, relOff: 2, target: pc + 6 + 0x10},
		{name: "jcc rel32", code: []byte{0x0f, 0x84, 0x00, 0x01, 0x00, 0x00}, len: 6, op: x86asm.JE, flow: CondJump, kind: Rel32, relOff: 2, target: pc + 6 + 0x100},
		{name: "cmp qword [rip+4], 5 (imm after disp)", code: []byte{0x48, 0x83, 0x3d, 0x04, 0x00, 0x00, 0x00, 0x05}, len: 8, op: x86asm.CMP,
			kind: RIPDisp32, relOff: 3, target: pc + 8 + 4, memBase: x86asm.RIP},
		{name: "movsd xmm0,[rip+0x20]", code: []byte{0xf2, 0x0f, 0x10, 0x05, 0x20, 0x00, 0x00, 0x00}, len: 8, op: x86asm.MOVSD_XMM,
			kind: RIPDisp32, relOff: 4, target: pc + 8 + 0x20, memBase: x86asm.RIP},
		{name: "mov al,[moffs64] is absolute", code: []byte{0xa0, 0xf0, 0xde, 0xbc, 0x9a, 0x78, 0x56, 0x34, 0x12}, len: 9, op: x86asm.MOV},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := Decode(tt.code, pc)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				var de *Error
				require.True(t, errors.As(err, &de))
				require.Equal(t, uint64(pc), de.PC)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.len, in.Len, "length")
			require.Equal(t, tt.op, in.Op, "op")
			require.Equal(t, tt.flow, in.Flow, "flow")
			require.Equal(t, tt.kind, in.RelKind, "rel kind")
			if tt.kind != RelNone {
				require.Equal(t, tt.relOff, in.RelOff, "rel offset")
				require.Equal(t, tt.target, in.Target, "target")
				require.Equal(t, tt.kind.Size(), in.PCRel)
				require.Equal(t, tt.relOff, in.PCRelOff)
			}
			if tt.memBase != 0 {
				found := false
				for _, a := range in.Args {
					if m, ok := a.(x86asm.Mem); ok {
						require.Equal(t, tt.memBase, m.Base)
						found = true
					}
				}
				require.True(t, found, "memory operand")
			}
			if tt.kind == RIPDisp32 || tt.kind == EIPDisp32 {
				require.GreaterOrEqual(t, in.MemArg, 0)
			} else {
				require.Equal(t, -1, in.MemArg)
			}
			if tt.text != "" {
				require.Contains(t, in.String(), tt.text)
			}
		})
	}
}

func TestWalk(t *testing.T) {
	// push rbp; mov rbp,rsp; lea rax,[rip+0]; pop rbp; ret; then a truncated call.
	code := []byte{0x55, 0x48, 0x89, 0xe5, 0x48, 0x8d, 0x05, 0x00, 0x00, 0x00, 0x00, 0x5d, 0xc3, 0xe8, 0x01}
	var lens []int
	var last error
	for in, err := range Walk(code, 0x400000) {
		if err != nil {
			last = err
			break
		}
		lens = append(lens, in.Len)
	}
	require.Equal(t, []int{1, 3, 7, 1, 1}, lens)
	require.ErrorIs(t, last, ErrTruncated)
	var de *Error
	require.ErrorAs(t, last, &de)
	require.Equal(t, uint64(0x400000+13), de.PC)

	all, err := DecodeAll(code[:13], 0x400000)
	require.NoError(t, err)
	require.Len(t, all, 5)
	require.Equal(t, uint64(0x400000+11), all[2].Target)
	require.Equal(t, Ret, all[4].Flow)
	require.True(t, all[4].Flow.Terminal())
	require.False(t, all[2].Flow.Terminal())
}

func TestFamily(t *testing.T) {
	for r, want := range map[x86asm.Reg]x86asm.Reg{
		x86asm.AL: x86asm.RAX, x86asm.AH: x86asm.RAX, x86asm.BH: x86asm.RBX, x86asm.SPB: x86asm.RSP,
		x86asm.DIB: x86asm.RDI, x86asm.R8B: x86asm.R8, x86asm.R15B: x86asm.R15, x86asm.CX: x86asm.RCX,
		x86asm.R11W: x86asm.R11, x86asm.ESI: x86asm.RSI, x86asm.R9L: x86asm.R9, x86asm.R13: x86asm.R13,
		x86asm.RIP: x86asm.RIP, x86asm.X0: x86asm.X0,
	} {
		require.Equal(t, want, Family(r), r.String())
	}
	in, err := Decode([]byte{0x4c, 0x8b, 0x1c, 0x8e}, 0) // mov r11,[rsi+rcx*4]
	require.NoError(t, err)
	require.True(t, in.UsesReg(x86asm.R11))
	require.True(t, in.UsesReg(x86asm.RSI))
	require.True(t, in.UsesReg(x86asm.RCX))
	require.False(t, in.UsesReg(x86asm.RAX))
}

// addS adds a signed offset to an address with wrap-around.
func addS(a uint64, d int64) uint64 { return a + uint64(d) }
