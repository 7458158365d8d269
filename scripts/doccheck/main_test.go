package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		want      []string // suffixes of the findings, in order
	}{
		{"documented", "// Package p does x.\npackage p\n\n// F does y.\nfunc F() {}\n\n// T is z.\ntype T int\n\n// M does w.\nfunc (T) M() {}\n", nil},
		{"no package comment", "package p\n", []string{"package p has no package comment"}},
		{"undocumented", "// Package p does x.\npackage p\n\nfunc F() {}\n\ntype T struct{}\n\nfunc (*T) Error() string { return \"\" }\n\nvar V = 1\n\nconst C = 2 // C is documented by its line comment.\n\nfunc g() {}\n\ntype u int\n\nfunc (u) M() {}\n",
			[]string{"func F", "type T", "method T.Error", "value V"}},
		{"grouped", "// Package p does x.\npackage p\n\n// Values.\nconst (\n\tA = 1\n\tB = 2\n)\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "p.go"), []byte(tc.src), 0o644))
			// Test files are not checked.
			require.NoError(t, os.WriteFile(filepath.Join(dir, "p_test.go"), []byte("package p\n\nfunc TestX() {}\n"), 0o644))
			got, err := check(dir)
			require.NoError(t, err)
			require.Len(t, got, len(tc.want), "%q", got)
			for i, w := range tc.want {
				require.True(t, strings.HasSuffix(got[i], w), "%q does not end in %q", got[i], w)
			}
		})
	}
}
