package trampoline

// Per-architecture hooks. amd64.go and arm64.go implement them:
//
//	jump(from, to, far)            encode an entry jump at from reaching to;
//	                               far forces the absolute form
//	nearReach(from, to)            whether the near form reaches
//	prologue(code, addr, need)     length of the whole instructions at the
//	                               start of code covering need bytes
//	relocate(code, from, to, opts) re-encode code for its new address
type archCode interface {
	jump(from, to uint64, far bool) ([]byte, error)
	nearReach(from, to uint64) bool
	prologue(code []byte, addr uint64, need int) (int, error)
	relocate(code []byte, from, to uint64, opts *Options) (*Relocation, error)
	// trap is the filler written after an entry jump up to the next
	// instruction boundary (int3 on x86-64, BRK on ARM64).
	trap() []byte
}

// entryKeeper is optionally implemented by an archCode whose functions may
// start with an instruction that must stay first at the entry, such as
// x86-64 ENDBR64 (CET indirect branch tracking) or ARM64 BTI: keepAtEntry
// returns its length (0 when code does not start with one). NewDetour then
// leaves those bytes in place and writes the entry jump after them.
type entryKeeper interface {
	keepAtEntry(code []byte) int
}

func codeFor(a Arch) (archCode, error) {
	switch a {
	case AMD64:
		return amd64Code{}, nil
	case ARM64:
		return arm64Code{}, nil
	}
	return nil, unsupportedArch(a)
}

// JumpSize returns the size of the smallest entry jump from `from` to `to`.
func JumpSize(a Arch, from, to uint64) (int, error) {
	c, err := codeFor(a)
	if err != nil {
		return 0, err
	}
	if c.nearReach(from, to) {
		return NearJumpSize(a), nil
	}
	return FarJumpSize(a), nil
}

// EncodeJump returns the smallest jump placed at `from` that reaches `to`.
func EncodeJump(a Arch, from, to uint64) ([]byte, error) {
	c, err := codeFor(a)
	if err != nil {
		return nil, err
	}
	return c.jump(from, to, !c.nearReach(from, to))
}

// EncodeFarJump returns the absolute-form jump (any distance) placed at `from`.
func EncodeFarJump(a Arch, from, to uint64) ([]byte, error) {
	c, err := codeFor(a)
	if err != nil {
		return nil, err
	}
	return c.jump(from, to, true)
}

// CheckFits returns a *TooShortError when a function of size bytes at addr
// cannot hold the smallest jump to `to`. name is used in the error.
func CheckFits(a Arch, name string, addr uint64, size int, to uint64) error {
	need, err := JumpSize(a, addr, to)
	if err != nil {
		return err
	}
	if size < need {
		return &TooShortError{Function: name, Addr: addr, Size: size, Need: need}
	}
	return nil
}

// PrologueLength returns how many bytes of whole instructions at the start of
// code (located at addr) must be moved to make room for need bytes. It fails
// when the function ends (ret, unconditional jump out) before need bytes, or
// when an instruction in that range cannot be decoded.
func PrologueLength(a Arch, code []byte, addr uint64, need int) (int, error) {
	c, err := codeFor(a)
	if err != nil {
		return 0, err
	}
	return c.prologue(code, addr, need)
}

// Relocate re-encodes code, a run of whole instructions that was at `from`,
// so that placed at `to` it does what it did at `from`: every PC-relative
// branch and memory reference reaches the same target (or opts.Map's choice),
// short branches are widened, and references that no longer reach are
// rewritten through an absolute form. Branches between instructions inside the
// run stay inside the copy. It refuses with a typed error what it cannot move.
func Relocate(a Arch, code []byte, from, to uint64, opts *Options) (*Relocation, error) {
	c, err := codeFor(a)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	return c.relocate(code, from, to, opts)
}
