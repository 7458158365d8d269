package image

import (
	"encoding/binary"

	"golang.org/x/arch/x86/x86asm"

	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// trimPadding returns how many bytes of code (a function sized by the gap
// to the next start, located at rva) are the function itself, the rest
// being alignment padding; 0 means "keep all of it". zeroTail says the gap
// goes on past code into a section's zero fill, which is padding too.
//
// Padding is only trimmed when what remains ends with an instruction that
// does not fall through (return, jump, trap) or a call (to a function that
// does not return). Otherwise the tail might be data the function reads (an
// ARM64 literal pool ending in a zero word, say), and keeping it is the
// conservative choice: a patch must never treat live bytes as free space.
func trimPadding(a Arch, code []byte, rva uint32, zeroTail bool) int {
	switch a {
	case AMD64:
		return trimX64(code, rva, zeroTail)
	case ARM64:
		return trimARM64(code, rva, zeroTail)
	}
	return 0
}

// trimX64 decodes the gap from its start, instruction by instruction (a
// backwards scan cannot tell a multi-byte NOP from the tail of a jmp rel32),
// and cuts after the last instruction that is not padding: INT3 (0xCC), any
// NOP form (0x90, 66 90, 0F 1F /0 with 66/2E prefixes) or 00 00 (zero fill).
func trimX64(code []byte, rva uint32, zeroTail bool) int {
	if len(code) == 0 {
		return 0
	}
	// Every padding form ends in CC, 90 or 00 (canonical multi-byte NOPs
	// end in a zero displacement): otherwise there is nothing to trim, and
	// no need to decode.
	if b := code[len(code)-1]; !zeroTail && b != 0xcc && b != 0x90 && b != 0 {
		return 0
	}
	// afterCall is the end of the instruction following the last real one
	// when that is a call: the call's return address must stay inside the
	// function (Go's runtime.goexit ends in CALL; NOP, compilers put INT3
	// after calls that do not return for the same reason).
	last, lastFlow, afterCall := 0, amd64.Seq, 0
	for pos := 0; pos < len(code); {
		in, err := amd64.Decode(code[pos:], uint64(rva)+uint64(pos))
		if err != nil {
			return 0 // not code all the way: keep everything
		}
		n := in.Len
		if !x64Pad(&in, code[pos:pos+n]) {
			last, lastFlow, afterCall = pos+n, in.Flow, 0
		} else if afterCall == 0 && last == pos && lastFlow == amd64.Call {
			afterCall = pos + n
		}
		pos += n
	}
	if afterCall > 0 {
		last = afterCall
	}
	if last == 0 || (last == len(code) && !zeroTail) {
		return 0
	}
	if !lastFlow.Terminal() && lastFlow != amd64.Call {
		return 0
	}
	return last
}

func x64Pad(in *amd64.Inst, b []byte) bool {
	switch {
	case in.Endbr:
		return false
	case in.Op == x86asm.NOP, in.Op == x86asm.INT && len(b) == 1 && b[0] == 0xcc:
		return true
	case in.Op == x86asm.XCHG && len(b) == 2 && b[0] == 0x66 && b[1] == 0x90:
		return true
	case len(b) == 2 && b[0] == 0 && b[1] == 0:
		return true
	}
	return false
}

// trimARM64 cuts trailing NOP (d503201f) and UDF (0000xxxx, zero fill)
// words. ARM64 instructions are fixed-size, so scanning backwards is exact.
func trimARM64(code []byte, rva uint32, zeroTail bool) int {
	n := len(code) &^ 3
	end := n
	for end >= 4 {
		w := binary.LittleEndian.Uint32(code[end-4:])
		if w != 0xd503201f && w>>16 != 0 {
			break
		}
		end -= 4
	}
	if end == 0 || (end == n && !(zeroTail && n == len(code))) {
		return 0
	}
	in := arm64.Decode(binary.LittleEndian.Uint32(code[end-4:]), uint64(rva)+uint64(end-4))
	switch in.Class {
	case arm64.BL, arm64.BLR:
		// Keep the word the call returns to inside the function.
		return min(end+4, n)
	case arm64.B, arm64.BR, arm64.RET, arm64.BRK, arm64.HLT:
		return end
	}
	return 0
}
