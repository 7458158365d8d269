package trampoline

import "testing"

// BenchmarkRelocateAMD64Prologue measures relocations per second of the
// realistic 64-byte prologue amdPrologue64, near (displacements adjusted,
// rel8 widened) and far (16 GiB away: every outward reference becomes an
// absolute form).
func BenchmarkRelocateAMD64Prologue(b *testing.B) {
	const from = 0x1_4000_1000
	for _, p := range []struct {
		name string
		to   uint64
	}{{"near", from + 0x7fff_0000}, {"far", from + 16<<30}} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(amdPrologue64)))
			for b.Loop() {
				if _, err := Relocate(AMD64, amdPrologue64, from, p.to, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "relocations/s")
		})
	}
}
