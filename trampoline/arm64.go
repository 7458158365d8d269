package trampoline

// arm64Code generates arm64 code. (Being written: see the trampoline issue.)
type arm64Code struct{}

func (arm64Code) jump(from, to uint64, far bool) ([]byte, error) {
	return nil, unsupportedArch(Arch(0))
}
func (arm64Code) nearReach(from, to uint64) bool { return false }
func (arm64Code) prologue(code []byte, addr uint64, need int) (int, error) {
	return 0, unsupportedArch(Arch(0))
}
func (arm64Code) relocate(code []byte, from, to uint64, opts *Options) (*Relocation, error) {
	return nil, unsupportedArch(Arch(0))
}
func (arm64Code) trap() []byte { return nil }
