package testenv_test

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// WineEnv is what Command gives a PE run under Wine: the caller's
// environment (CI=true included, so a test inside Wine knows it runs in CI)
// with the display removed and Wine's own settings replaced.
func ExampleWineEnv() {
	env := testenv.WineEnv([]string{"CI=true", "DISPLAY=:0", "WINEDEBUG=+relay"}, "/cache/hotpatch/wine")
	for _, kv := range env {
		fmt.Println(kv)
	}
	// Output:
	// CI=true
	// WINEPREFIX=/cache/hotpatch/wine
	// WINEDEBUG=-all
	// WINEDLLOVERRIDES=mscoree,mshtml=;bcryptprimitives=n
}

func ExamplePlatform() {
	fmt.Println(testenv.Platform{GOOS: "windows", GOARCH: "arm64"})
	// Output: windows/arm64
}

// InARow is a Lines.WaitFor match for a value that must hold steadily: it
// holds at the third "2" in a row, after a run the "1" broke.
func ExampleInARow() {
	steady := testenv.InARow("2", 3)
	for _, line := range []string{"2", "2", "1", "2", "2", "2"} {
		fmt.Println(line, steady(line))
	}
	// Output:
	// 2 false
	// 2 false
	// 1 false
	// 2 false
	// 2 false
	// 2 true
}
