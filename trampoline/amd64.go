package trampoline

// amd64Code generates amd64 code. (Being written: see the trampoline issue.)
type amd64Code struct{}

func (amd64Code) jump(from, to uint64, far bool) ([]byte, error) {
	return nil, unsupportedArch(Arch(0))
}
func (amd64Code) nearReach(from, to uint64) bool { return false }
func (amd64Code) prologue(code []byte, addr uint64, need int) (int, error) {
	return 0, unsupportedArch(Arch(0))
}
func (amd64Code) relocate(code []byte, from, to uint64, opts *Options) (*Relocation, error) {
	return nil, unsupportedArch(Arch(0))
}
func (amd64Code) trap() []byte { return nil }
