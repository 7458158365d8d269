// Command benchtable turns raw `go test -bench` output into the markdown
// table of BENCHMARKS.md: one row per benchmark with the median of every
// metric over the runs, its spread, and the ratio to the baseline measured
// in the same run.
//
// Usage (scripts/bench.sh runs it):
//
//	benchtable [-baseline SUBJECT=BASELINE]... LABEL=RAWFILE...
//
// LABEL names the platform a raw file was measured on ("linux/amd64",
// "windows/amd64 under Wine"). A baseline pairs two benchmarks by full name
// without the -GOMAXPROCS suffix (BenchmarkDiffLarge=BenchmarkDecodeFloor);
// the ratio is subject time / baseline time, so 2.0x means twice as slow.
// Inside one benchmark, sub-benchmarks named like a baseline (debug-pe,
// debug/elf, direct, gomonkey) are the baseline of their siblings without
// being listed.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

func main() {
	var pairs pairFlag
	flag.Var(&pairs, "baseline", "SUBJECT=BASELINE: benchmark names whose time ratio to report (repeatable)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: benchtable [-baseline SUBJECT=BASELINE]... LABEL=RAWFILE...\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var all []*result
	for _, arg := range flag.Args() {
		label, path, ok := strings.Cut(arg, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "benchtable: %q: want LABEL=RAWFILE\n", arg)
			os.Exit(2)
		}
		f, err := os.Open(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %v\n", err)
			os.Exit(1)
		}
		rs, err := parse(f, label)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchtable: %s: %v\n", path, err)
			os.Exit(1)
		}
		all = append(all, rs...)
	}
	write(os.Stdout, all, map[string]string(pairs))
}

// pairFlag collects -baseline SUBJECT=BASELINE.
type pairFlag map[string]string

func (p *pairFlag) String() string { return fmt.Sprint(map[string]string(*p)) }

func (p *pairFlag) Set(s string) error {
	subj, base, ok := strings.Cut(s, "=")
	if !ok || subj == "" || base == "" {
		return fmt.Errorf("want SUBJECT=BASELINE, got %q", s)
	}
	if *p == nil {
		*p = pairFlag{}
	}
	(*p)[subj] = base
	return nil
}

// result is every run of one benchmark on one platform.
type result struct {
	Label, Pkg, Name string
	Units            []string             // in first-seen order
	Values           map[string][]float64 // unit -> one value per run
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads the go test -bench format: "pkg:" lines set the package, and
// each "BenchmarkName-P  N  v unit  v unit..." line is one run.
func parse(r io.Reader, label string) ([]*result, error) {
	var (
		pkg   string
		order []*result
		byKey = map[string]*result{}
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if p, ok := strings.CutPrefix(text, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		if !strings.HasPrefix(text, "Benchmark") {
			continue
		}
		f := strings.Fields(text)
		// Name, iterations, then value/unit pairs.
		if len(f) < 4 || len(f)%2 != 0 {
			continue // a benchmark's own log line, not a result
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := procSuffix.ReplaceAllString(f[0], "")
		key := pkg + " " + name
		res := byKey[key]
		if res == nil {
			res = &result{Label: label, Pkg: pkg, Name: name, Values: map[string][]float64{}}
			byKey[key] = res
			order = append(order, res)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q: %v", line, f[i], err)
			}
			unit := f[i+1]
			if _, seen := res.Values[unit]; !seen {
				res.Units = append(res.Units, unit)
			}
			res.Values[unit] = append(res.Values[unit], v)
		}
	}
	return order, sc.Err()
}

// baselineSubs are sub-benchmark names that are a baseline for their
// siblings, in order of preference (a per-call benchmark with both a direct
// and a gomonkey sibling is compared with the direct call).
var baselineSubs = []string{"debug-pe", "debug/elf", "direct", "gomonkey"}

// isBaseline reports whether name is itself a baseline sub-benchmark.
func isBaseline(name string) bool {
	for _, b := range baselineSubs {
		if strings.HasSuffix(name, "/"+b) {
			return true
		}
	}
	return false
}

// baselineOf returns the result r is compared with, or nil: the -baseline
// pair named for it, else a baseline sibling, i.e. a sub-benchmark of the
// same parent (everything before the last "/") in the same package. Names
// repeat across packages (BenchmarkCall exists in three), so the package
// must match too.
func baselineOf(r *result, all []*result, pairs map[string]string) *result {
	find := func(name string) *result {
		for _, o := range all {
			if o.Label == r.Label && o.Pkg == r.Pkg && o.Name == name && o != r {
				return o
			}
		}
		return nil
	}
	if b, ok := pairs[r.Name]; ok {
		return find(b)
	}
	i := strings.LastIndex(r.Name, "/")
	if i < 0 || isBaseline(r.Name) {
		return nil
	}
	for _, b := range baselineSubs {
		if o := find(r.Name[:i] + "/" + b); o != nil {
			return o
		}
	}
	return nil
}

// median returns the median of vs and the largest relative distance of a
// run from it (benchstat's ± spread, without its confidence interval).
func median(vs []float64) (med, spread float64) {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		med = s[n/2]
	} else {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	if med == 0 {
		return med, 0
	}
	for _, v := range s {
		d := (v - med) / med
		if d < 0 {
			d = -d
		}
		spread = max(spread, d)
	}
	return med, spread
}

// format prints a metric the way a person reads it: durations in the
// largest fitting unit, large counts with SI prefixes.
func format(v float64, unit string) string {
	switch unit {
	case "ns/op":
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.3g s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.3g ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.3g µs", v/1e3)
		default:
			return fmt.Sprintf("%.3g ns", v)
		}
	case "B/op":
		switch {
		case v >= 1<<20:
			return fmt.Sprintf("%.3g MiB/op", v/(1<<20))
		case v >= 1<<10:
			return fmt.Sprintf("%.3g KiB/op", v/(1<<10))
		default:
			return fmt.Sprintf("%.0f B/op", v)
		}
	}
	u := strings.TrimSuffix(strings.TrimSuffix(unit, "/op"), "/s")
	perS := strings.HasSuffix(unit, "/s")
	var s string
	switch {
	case v >= 1e9:
		s = fmt.Sprintf("%.3gG", v/1e9)
	case v >= 1e6:
		s = fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		s = fmt.Sprintf("%.3gk", v/1e3)
	case v == float64(int64(v)):
		s = fmt.Sprintf("%d", int64(v))
	case v >= 100:
		s = fmt.Sprintf("%.0f", v)
	default:
		s = fmt.Sprintf("%.3g", v)
	}
	switch {
	case perS:
		return s + " " + u + "/s"
	case strings.HasSuffix(unit, "/op") && unit != "allocs/op":
		return s + " " + u + "/op"
	default:
		return s + " " + unit
	}
}

// write prints the markdown table.
func write(w io.Writer, all []*result, pairs map[string]string) {
	fmt.Fprintln(w, "| platform | package | benchmark | runs | time/op | ± | other metrics (median) | baseline | ratio |")
	fmt.Fprintln(w, "| --- | --- | --- | ---: | ---: | ---: | --- | --- | ---: |")
	for _, r := range all {
		t, spread := median(r.Values["ns/op"])
		var other []string
		for _, u := range r.Units {
			if u == "ns/op" {
				continue
			}
			m, _ := median(r.Values[u])
			other = append(other, format(m, u))
		}
		base, ratio := "", ""
		if b := baselineOf(r, all, pairs); b != nil {
			bt, _ := median(b.Values["ns/op"])
			base = "`" + b.Name + "`"
			if bt > 0 {
				ratio = fmt.Sprintf("%.2fx", t/bt)
			}
		}
		fmt.Fprintf(w, "| %s | %s | `%s` | %d | %s | %.0f%% | %s | %s | %s |\n",
			r.Label, strings.TrimPrefix(r.Pkg, "github.com/seed3bccf95f/hotpatch/"), r.Name,
			len(r.Values["ns/op"]), format(t, "ns/op"), spread*100, strings.Join(other, ", "), base, ratio)
	}
}
