package trampoline

import "testing"

// a64Prologue is a realistic 64-byte (16-instruction) function start in the
// style gcc -O2 emits, with the PC-relative forms a prologue holds: ADRP
// pairs, a literal load, a BL, conditional branches in and out, a TBZ.
var a64Prologue = []uint32{
	0xa9bd7bfd, // stp x29, x30, [sp, #-48]!
	0x910003fd, // mov x29, sp
	0xa90153f3, // stp x19, x20, [sp, #16]
	0xb0000093, // adrp x19, +0x11000
	0xf9401260, // ldr x0, [x19, #32]
	0xb4000360, // cbz x0, +0x6c (out of the run)
	0x58000801, // ldr x1, +0x100 (literal pool after the function)
	0x94001000, // bl +0x4000
	0xaa0003f4, // mov x20, x0
	0x10000802, // adr x2, +0x100
	0x54000081, // b.ne +0x10 (inside the run)
	0x37180054, // tbnz w20, #3, +8 (inside the run)
	0x91000400, // add x0, x0, #1
	0x36f80060, // tbz w0, #31, +0xc (out of the run)
	0xf9000260, // str x0, [x19]
	0x17fffff3, // b -0x34 (inside the run, back to the second stp)
}

// BenchmarkRelocateARM64Prologue measures relocations per second of the
// 64-byte prologue, near (every instruction keeps its form) and far (8 GiB
// away: every outward reference becomes an absolute form).
func BenchmarkRelocateARM64Prologue(b *testing.B) {
	code := a64W(a64Prologue...)
	const from = 0x10_0000_0000
	for _, p := range []struct {
		name string
		to   uint64
	}{{"near", from + 0x10000}, {"far", from + 8<<30}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(code)))
			for b.Loop() {
				if _, err := Relocate(ARM64, code, from, p.to, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "relocs/s")
		})
	}
}

// TestARM64PrologueBenchInput checks the benchmark's input relocates right.
func TestARM64PrologueBenchInput(t *testing.T) {
	code := a64W(a64Prologue...)
	const from = 0x10_0000_0000
	for _, to := range []uint64{from + 0x10000, from + 8<<30} {
		rel, err := Relocate(ARM64, code, from, to, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }); err != nil {
			t.Fatal(err)
		}
	}
}
