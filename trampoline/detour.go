package trampoline

// Detour redirects a function to a replacement while keeping the original
// callable: Entry is written over the function's first bytes, and Code, placed
// at Trampoline, runs those first bytes (relocated) then jumps back.
type Detour struct {
	Target      uint64 // the function's entry
	Replacement uint64 // where calls to Target go once Entry is written
	Trampoline  uint64 // where Code must be placed; call it to run the original
	// Original is the bytes at Target that Entry overwrites (whole instructions).
	Original []byte
	// Entry is the jump to Replacement, filled with trap instructions up to
	// len(Original). When the function starts with an instruction that must
	// stay first (x86-64 ENDBR64), Entry starts with it unchanged and the jump
	// follows.
	Entry []byte
	// Code is the trampoline: the relocated Original, then a jump to
	// Target+len(Original).
	Code []byte
	// Boundaries maps each instruction of Original to its copy in Code, so
	// a thread stopped inside Original can be moved into the trampoline.
	Boundaries []Boundary
}

// NewDetour plans a detour of the function at target, whose first bytes are
// code (pass the whole function when known: it lets the relocator refuse
// branches back into the moved prologue), to replacement, with the trampoline
// placed at trampoline. It writes nothing.
func NewDetour(a Arch, target uint64, code []byte, replacement, trampoline uint64, opts *Options) (*Detour, error) {
	c, err := codeFor(a)
	if err != nil {
		return nil, err
	}
	if opts == nil {
		opts = &Options{}
	}
	// An instruction that must stay first (ENDBR64) stays at the entry, the
	// jump follows it; the trampoline starts with its relocated copy.
	keep := 0
	if k, ok := c.(entryKeeper); ok {
		keep = k.keepAtEntry(code)
	}
	jump, err := EncodeJump(a, target+uint64(keep), replacement)
	if err != nil {
		return nil, err
	}
	if len(code) < keep+len(jump) {
		return nil, &TooShortError{Addr: target, Size: len(code), Need: keep + len(jump)}
	}
	n, err := c.prologue(code, target, keep+len(jump))
	if err != nil {
		return nil, err
	}
	o := *opts
	if o.Function == nil {
		o.Function, o.FunctionAddr = code, target
	}
	if keep > 0 {
		o.entryJump = target + uint64(keep)
	}
	rel, err := c.relocate(code[:n], target, trampoline, &o)
	if err != nil {
		return nil, err
	}
	back, err := EncodeJump(a, trampoline+uint64(len(rel.Code)), target+uint64(n))
	if err != nil {
		return nil, err
	}
	entry := append(append([]byte(nil), code[:keep]...), jump...)
	for len(entry) < n {
		entry = append(entry, c.trap()...)
	}
	return &Detour{
		Target:      target,
		Replacement: replacement,
		Trampoline:  trampoline,
		Original:    append([]byte(nil), code[:n]...),
		Entry:       entry[:n],
		Code:        append(rel.Code, back...),
		Boundaries:  rel.Boundaries,
	}, nil
}
