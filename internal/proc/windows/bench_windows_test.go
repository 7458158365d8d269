//go:build windows && amd64

package winproc

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// BenchmarkStopResume measures how long a child with 1 or 8 busy worker
// threads (plus its main and watchdog threads) takes to stop and resume.
func BenchmarkStopResume(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprintf("threads=%d", n), func(b *testing.B) {
			_, p := openChild(b, n, false)
			ctx := context.Background()
			for b.Loop() {
				if _, err := p.Stop(ctx); err != nil {
					b.Fatal(err)
				}
				if err := p.Resume(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWrite measures a 16-byte WriteProcessMemory into the child.
func BenchmarkWrite(b *testing.B) {
	c, p := openChild(b, 1, false)
	a, err := p.AllocNear(context.Background(), c.value, 4096, 1<<31-4096, proc.ProtRead|proc.ProtWrite)
	require.NoError(b, err)
	data := make([]byte, 16)
	b.SetBytes(16)
	for b.Loop() {
		if err := p.WriteAt(data, a); err != nil {
			b.Fatal(err)
		}
	}
}
