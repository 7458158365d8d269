// Command hello is testenv's own fixture: it says which platform it was
// built for and echoes its arguments and one environment variable, so tests
// can see that testenv.Command really ran it and passed everything through.
// The argument "exit=N" makes it exit with status N.
package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
)

// msg can be replaced at link time (-ldflags=-X main.msg=...), which tests
// use to get a build with different inputs.
var msg = "hello"

func main() {
	// crypto/rand is what needs ProcessPrng on Windows: use it so a missing
	// shim shows up here, not in some later test.
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		fmt.Println("rand:", err)
		os.Exit(2)
	}
	fmt.Printf("%s from %s/%s args=%q env=%q\n", msg, runtime.GOOS, runtime.GOARCH, os.Args[1:], os.Getenv("HELLO_ENV"))
	for _, a := range os.Args[1:] {
		if n, ok := strings.CutPrefix(a, "exit="); ok {
			code, _ := strconv.Atoi(n)
			os.Exit(code)
		}
	}
}
