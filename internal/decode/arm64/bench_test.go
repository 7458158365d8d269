package arm64

import "testing"

// benchWords is a mix of common words: the classes a scan meets most.
var benchWords = []uint32{
	0xa9bf7bfd, 0x910003fd, 0x94000010, 0xf9400a10, 0xb4000360, 0x90000093,
	0x91000021, 0x54000081, 0xaa0003f4, 0xd65f03c0, 0xf8200201, 0x58000801,
}

// BenchmarkDecode: words/s with arm64asm's decoding (Decode).
func BenchmarkDecode(b *testing.B) {
	for b.Loop() {
		for k, w := range benchWords {
			_ = Decode(w, uint64(4*k))
		}
	}
	b.ReportMetric(float64(b.N*len(benchWords))/b.Elapsed().Seconds(), "words/s")
}

// BenchmarkClassify: words/s classifying by bit masks only (Classify).
func BenchmarkClassify(b *testing.B) {
	for b.Loop() {
		for k, w := range benchWords {
			_ = Classify(w, uint64(4*k))
		}
	}
	b.ReportMetric(float64(b.N*len(benchWords))/b.Elapsed().Seconds(), "words/s")
}
