package diff

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
)

// FuzzCompare mutates the new image of the small fixture pairs: whatever
// image accepts, Compare must not panic, and two runs over the same input
// must give the same JSON.
func FuzzCompare(f *testing.F) {
	for _, name := range []string{"c-v2-amd64.exe", "c-v2-arm64.exe", "c-v2-amd64.elf"} {
		data, err := os.ReadFile(fixtures.Path(f, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(name, data, uint32(0), byte(0))
		f.Add(name, data, uint32(0x400), byte(0xe8))
		f.Add(name, data, uint32(0x1a50), byte(0xff))
	}
	olds := map[string]*image.Image{}
	for _, name := range []string{"c-v1-amd64.exe", "c-v1-arm64.exe", "c-v1-amd64.elf"} {
		img, err := image.Open(fixtures.Path(f, name))
		if err != nil {
			f.Fatal(err)
		}
		olds[name[len("c-v1-"):]] = img
	}
	f.Fuzz(func(t *testing.T, name string, data []byte, at uint32, val byte) {
		if len(name) < 5 {
			return
		}
		old := olds[name[len(name)-min(len(name), 9):]]
		if old == nil {
			return
		}
		data = append([]byte(nil), data...)
		if len(data) > 0 {
			data[int(at)%len(data)] = val
		}
		img, err := image.Parse(data)
		if err != nil {
			return
		}
		var outs []string
		for range 2 {
			rep, err := Compare(old, img, nil)
			if err != nil {
				return
			}
			b, err := json.Marshal(rep)
			if err != nil {
				t.Fatal(err)
			}
			_ = rep.Summary()
			outs = append(outs, string(b))
		}
		if outs[0] != outs[1] {
			t.Fatal("two runs differ")
		}
	})
}
