// Command v2 is the Go fixture program, version 2: v1 (../v1) with the fixes.
// Every difference is listed in ../../README.md and ../../groundtruth.json.
//
// Usage: v2 [iterations [interval_ms]] (defaults 600 and 100). Every
// interval it calls each function once and prints one line; it exits by
// itself after the given number of lines.
//
// Functions are //go:noinline so each stays a real function with a symbol.
package main

import (
	"os"
	"strconv"
	"time"
)

const (
	slotCap  = 16 // storage in slots
	slotUsed = 8  // valid entries; the rest hold 0xdead
)

// Globals: same names, types and sizes as v1.
var (
	total int64 // written by record, read by readTotal
	hits  int   // read by readHits; written by record (new in v2)
	slots = [slotCap]int{11, 22, 33, 44, 55, 66, 77, 88,
		0xdead, 0xdead, 0xdead, 0xdead, 0xdead, 0xdead, 0xdead, 0xdead}
)

// callsMoved is unchanged, but its callee movedMix moves: only the call
// displacement differs.
//
//go:noinline
func callsMoved(x int) int { return movedMix(x) + 1 }

// leafMix is a leaf: no calls, no memory. Unchanged, does not move.
//
//go:noinline
func leafMix(a, b int) int { return (a * 31) ^ (b + 7) }

// zero is too short for a 5-byte jump on amd64. Unchanged.
//
//go:noinline
func zero() int { return 0 }

// readTotal reads a global. Unchanged.
//
//go:noinline
func readTotal() int64 { return total }

// readHits reads a global. Unchanged.
//
//go:noinline
func readHits() int { return hits }

// clampSmall is the existing helper scale now calls. Unchanged.
//
//go:noinline
func clampSmall(x int) int {
	if x < 0 {
		return 0
	}
	if x > 100 {
		return 100
	}
	return x
}

// greeting: CHANGED string constant (same length as v1's).
//
//go:noinline
func greeting() string { return "hello from v2" }

// slotGet: CHANGED, bug fix with a new bounds check.
//
//go:noinline
func slotGet(i int) int {
	if uint(i) >= slotUsed {
		return -1
	}
	return slots[i]
}

// record: CHANGED, also writes the global hits.
//
//go:noinline
func record(x int) int64 {
	total += int64(x)
	hits++
	return total
}

// scale: CHANGED, new call to the existing helper clampSmall.
//
//go:noinline
func scale(x int) int { return leafMix(x, 3)*2 + clampSmall(x) }

// legacyStep: REMOVED (v1 had it here).

// dispatch: CHANGED switch: case 5 differs, case 6 calls freshStep, new
// case 11.
//
//go:noinline
func dispatch(op, x int) int {
	switch op {
	case 0:
		return x + 1
	case 1:
		return x * 3
	case 2:
		return clampSmall(x)
	case 3:
		return x ^ 0x5a5a
	case 4:
		return x >> 1
	case 5:
		return x - 200
	case 6:
		return freshStep(x)
	case 7:
		return leafMix(x, x)
	case 8:
		return x & 0x0f0f
	case 9:
		return x*9 + 1
	case 10:
		return x | 0x100
	case 11:
		return x * x
	}
	return -1
}

// freshStep: ADDED, inserted here, so everything below only moves.
//
//go:noinline
func freshStep(x int) int { return x*7 - 3 }

// fib is recursive. Unchanged; moves.
//
//go:noinline
func fib(n int) int {
	if n < 2 {
		return n
	}
	return fib(n-1) + fib(n-2)
}

// movedMix is unchanged; it moves (freshStep is inserted before it).
//
//go:noinline
func movedMix(x int) int { return leafMix(x, 7) ^ (x >> 2) }

// label has unchanged string constants; it moves.
//
//go:noinline
func label(n int) string {
	if n&1 != 0 {
		return "odd"
	}
	return "even"
}

// classify is an unchanged switch with a jump table; it moves.
//
//go:noinline
func classify(kind, x int) int {
	switch kind {
	case 0:
		return x + 1000
	case 1:
		return x * 5
	case 2:
		return x & 0xff
	case 3:
		return ^x
	case 4:
		return x << 3
	case 5:
		return -x
	case 6:
		return x ^ 0x77
	case 7:
		return x >> 4
	case 8:
		return x - 3
	case 9:
		return x * 13
	case 10:
		return x | 0x40
	}
	return 0
}

// run is the harness, identical in v1 and v2: one line per iteration.
func run(iterations int64, interval time.Duration) {
	pid := os.Getpid()
	for n := int64(0); n < iterations; n++ {
		c := int(n & 0x7fffffff)
		b := make([]byte, 0, 256)
		field := func(key string, v int64) {
			b = append(b, key...)
			b = strconv.AppendInt(b, v, 10)
		}
		field("n=", n)
		field(" pid=", int64(pid))
		b = append(b, " greet="...)
		b = append(b, greeting()...)
		field(" leaf=", int64(leafMix(c, 5)))
		field(" zero=", int64(zero()))
		field(" slot=", int64(slotGet(c%12)))
		rec := record(c)
		field(" rec=", rec)
		field(" total=", readTotal())
		field(" hits=", int64(readHits()))
		field(" scale=", int64(scale(c)))
		field(" disp=", int64(dispatch(c%13, c)))
		field(" fib=", int64(fib(c%16)))
		field(" moved=", int64(movedMix(c)))
		field(" callee=", int64(callsMoved(c)))
		b = append(b, " label="...)
		b = append(b, label(c)...)
		field(" class=", int64(classify(c%12, c)))
		b = append(b, '\n')
		os.Stdout.Write(b)
		if interval > 0 && n+1 < iterations {
			time.Sleep(interval)
		}
	}
}

func main() {
	iterations, interval := int64(600), 100
	if len(os.Args) > 1 {
		iterations, _ = strconv.ParseInt(os.Args[1], 10, 64)
	}
	if len(os.Args) > 2 {
		interval, _ = strconv.Atoi(os.Args[2])
	}
	run(iterations, time.Duration(interval)*time.Millisecond)
}
