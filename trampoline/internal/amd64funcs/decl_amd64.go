package amd64funcs

// Declarations of the assembly functions (never called from Go: tests call
// them at their address with execmem.Call).
func helper()
func movRIP()
func leaRIP()
func cmpRIP()
func callMemRIP()
func sseRIP()
func avxRIP()
func jccRel8Out()
func jccRel32Out()
func loopIn()
func jrcxzOut()
func callRel32()
func callInside()
func endbr()
func thunkRel32()
func jmpRel8In()
func loopBackIntoRun()
func retEarly()
func replacement()
