package image

import (
	"bufio"
	"bytes"
	"debug/pe"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// wineDLLDir holds Wine's x86-64 PE DLLs (Debian wine64), real third-party
// PE files built by mingw-w64 with .pdata and COFF symbols.
const wineDLLDir = "/usr/lib/x86_64-linux-gnu/wine/x86_64-windows"

// peOracle is what the LLVM tools say about one PE file.
type peOracle struct {
	base     uint64
	secVMA   []uint64                // section index (0-based) -> VMA
	secNames []string                // llvm-objdump -h
	pdata    []oracleRange           // llvm-readobj --unwind
	symbols  map[uint32][]oracleSym  // llvm-objdump --syms, by RVA (section symbols only)
	funcSyms map[uint32]bool         // RVAs of type-0x20 symbols in sections
	exports  map[uint32]oracleExport // llvm-readobj --coff-exports, by ordinal
	// exportsErr is set when llvm-readobj cannot list the exports (LLVM 14
	// fails on export tables without names, e.g. Wine's vga.dll).
	exportsErr error
	nsyms      int
	imports    []Import // llvm-readobj --coff-imports (Ordinal only for imports by ordinal)
	relocs     []Reloc  // llvm-readobj --coff-basereloc, ABSOLUTE padding left out
	codeView   *CodeView
}

var (
	reImpSym = regexp.MustCompile(`^Symbol: (.*) \((\d+)\)$`)
	reGUID   = regexp.MustCompile(`^PDBGUID: \(([0-9A-F ]+)\)$`)
)

// loadOracleDirs reads imports, base relocations and the CodeView record.
func (o *peOracle) loadDirs(t testing.TB, readobj, path string) {
	sc := bufio.NewScanner(bytes.NewReader(runTool(t, readobj, "--coff-imports", "--coff-basereloc", "--coff-debug-directory", path)))
	sc.Buffer(nil, 1<<20)
	var lib string
	var iat, idx uint32
	var rtype string
	relocTypes := map[string]RelocType{"HIGH": 1, "LOW": 2, "HIGHLOW": 3, "DIR64": 10}
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "Import {", line == "DelayImport {":
			lib, iat, idx = "", 0, 0
			if line == "DelayImport {" {
				lib = "\x00delay" // not compared: parsePE does not list delay-load imports
			}
		case strings.HasPrefix(line, "Name: ") && lib == "":
			lib = strings.TrimPrefix(line, "Name: ")
		case strings.HasPrefix(line, "ImportAddressTableRVA: 0x"):
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "ImportAddressTableRVA: 0x"), 16, 32)
			iat = uint32(v)
		case strings.HasPrefix(line, "Symbol: ") && lib != "\x00delay":
			m := reImpSym.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: import line %q", path, line)
				continue
			}
			imp := Import{Library: lib, Name: m[1], Slot: iat + 8*idx}
			if imp.Name == "" {
				v, _ := strconv.ParseUint(m[2], 10, 16)
				imp.Ordinal = uint16(v)
			}
			o.imports = append(o.imports, imp)
			idx++
		case strings.HasPrefix(line, "Type: ") && !strings.Contains(line, "("):
			rtype = strings.TrimPrefix(line, "Type: ")
		case strings.HasPrefix(line, "Address: 0x") && rtype != "":
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "Address: 0x"), 16, 32)
			if rtype != "ABSOLUTE" {
				o.relocs = append(o.relocs, Reloc{RVA: uint32(v), Type: relocTypes[rtype]})
			}
			rtype = ""
		case strings.HasPrefix(line, "PDBGUID: "):
			m := reGUID.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("%s: GUID line %q", path, line)
				continue
			}
			o.codeView = &CodeView{}
			for i, h := range strings.Fields(m[1]) {
				v, _ := strconv.ParseUint(h, 16, 8)
				o.codeView.GUID[i] = byte(v)
			}
		case strings.HasPrefix(line, "PDBAge: ") && o.codeView != nil:
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "PDBAge: "), 10, 32)
			o.codeView.Age = uint32(v)
		case strings.HasPrefix(line, "PDBFileName:") && o.codeView != nil:
			o.codeView.Path = strings.TrimSpace(strings.TrimPrefix(line, "PDBFileName:"))
		}
	}
}

type oracleRange struct {
	rva, size uint32
	name      string
	chained   bool
}

type oracleSym struct {
	name  string
	class int
	typ   int
}

type oracleExport struct {
	name string
	rva  uint32
}

func runTool(t testing.TB, tool string, args ...string) []byte {
	t.Helper()
	out, err := tryTool(tool, args...)
	if err != nil {
		t.Error(err)
	}
	return out
}

func tryTool(tool string, args ...string) ([]byte, error) {
	cmd := exec.Command(tool, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

var (
	reSection = regexp.MustCompile(`^\s*(\d+)\s+(\S*)\s+([0-9a-f]+)\s+([0-9a-f]+)\b`)
	reSym     = regexp.MustCompile(`^\[\s*\d+\]\(sec\s+(-?\d+)\)\(fl 0x[0-9a-f]+\)\(ty\s+([0-9a-f]+)\)\(scl\s+([0-9a-f]+)\) \(nx (\d+)\) 0x([0-9a-f]+) (.*)$`)
	reHexAt   = regexp.MustCompile(`\(0x([0-9A-Fa-f]+)\)\s*$`)
)

// loadOracle runs llvm-objdump (sections, symbols) and llvm-readobj
// (unwind, exports) on path.
func loadOracle(t testing.TB, objdump, readobj, path string, base uint64) *peOracle {
	o := &peOracle{base: base, symbols: map[uint32][]oracleSym{}, funcSyms: map[uint32]bool{}, exports: map[uint32]oracleExport{}}

	sc := bufio.NewScanner(bytes.NewReader(runTool(t, objdump, "-h", "--syms", path)))
	sc.Buffer(nil, 1<<20)
	inSyms := false
	for sc.Scan() {
		line := sc.Text()
		if line == "SYMBOL TABLE:" {
			inSyms = true
			continue
		}
		if !inSyms {
			if m := reSection.FindStringSubmatch(line); m != nil {
				vma, _ := strconv.ParseUint(m[4], 16, 64)
				o.secVMA = append(o.secVMA, vma)
				o.secNames = append(o.secNames, m[2])
			}
			continue
		}
		m := reSym.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		o.nsyms++
		sec, _ := strconv.Atoi(m[1])
		typ, _ := strconv.ParseInt(m[2], 16, 32)
		class, _ := strconv.ParseInt(m[3], 16, 32)
		val, _ := strconv.ParseUint(m[5], 16, 32)
		naux, _ := strconv.Atoi(m[4])
		if sec < 1 || sec > len(o.secVMA) || (class == 3 && typ == 0 && naux > 0) {
			continue // not in a section, or a section definition: no name for code
		}
		rva := uint32(o.secVMA[sec-1] - base + val)
		o.symbols[rva] = append(o.symbols[rva], oracleSym{name: m[6], class: int(class), typ: int(typ)})
		if typ&0x30 == 0x20 {
			o.funcSyms[rva] = true
		}
	}

	// --unwind: x64 blocks have StartAddress/EndAddress, ARM64 blocks
	// Function and FunctionLength. Nested RuntimeFunction blocks (the
	// chained parent, printed inside its fragment) are skipped.
	var cur *oracleRange
	var stack []bool // open blocks; true for a RuntimeFunction or Chained one
	rfs := 0         // RuntimeFunction and Chained blocks open
	flush := func() {
		if cur != nil && cur.size != 0 {
			o.pdata = append(o.pdata, *cur)
		}
		cur = nil
	}
	exp := oracleExport{}
	var ord uint32
	inExport := false
	exports, err := tryTool(readobj, "--coff-exports", path)
	if err != nil {
		o.exportsErr, exports = err, nil
	}
	text := append(runTool(t, readobj, "--unwind", path), exports...)
	sc = bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "RuntimeFunction {", line == "Chained {":
			stack = append(stack, true)
			rfs++
			if rfs == 1 && line == "RuntimeFunction {" {
				flush()
				cur = &oracleRange{}
			}
			continue
		case line == "}" || line == "]":
			if len(stack) > 0 {
				if stack[len(stack)-1] {
					rfs--
				}
				stack = stack[:len(stack)-1]
			}
		case strings.HasSuffix(line, "{") || strings.HasSuffix(line, "[") || strings.Contains(line, " [ ("):
			stack = append(stack, false)
		}
		switch {
		case line == "Export {":
			inExport, exp, ord = true, oracleExport{}, 0
		case inExport && line == "}":
			inExport = false
			if exp.rva != 0 {
				o.exports[ord] = exp
			}
		case inExport && strings.HasPrefix(line, "Ordinal: "):
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "Ordinal: "), 10, 32)
			ord = uint32(v)
		case inExport && strings.HasPrefix(line, "Name: "):
			exp.name = strings.TrimPrefix(line, "Name: ")
		case inExport && strings.HasPrefix(line, "RVA: "):
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "RVA: 0x"), 16, 32)
			exp.rva = uint32(v)
		case cur == nil || rfs != 1:
		case strings.HasPrefix(line, "StartAddress:"), strings.HasPrefix(line, "Function:"):
			if m := reHexAt.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseUint(m[1], 16, 64)
				cur.rva = uint32(v - base)
			}
			name := strings.TrimSpace(line[strings.Index(line, ":")+1:])
			if i := strings.LastIndex(name, " ("); i >= 0 {
				cur.name = name[:i]
			}
		case strings.HasPrefix(line, "EndAddress:"):
			if m := reHexAt.FindStringSubmatch(line); m != nil {
				v, _ := strconv.ParseUint(m[1], 16, 64)
				cur.size = uint32(v-base) - cur.rva
			}
		case strings.HasPrefix(line, "FunctionLength:") && cur.size == 0:
			v, _ := strconv.ParseUint(strings.TrimPrefix(line, "FunctionLength: "), 10, 32)
			cur.size = uint32(v)
		case strings.HasPrefix(line, "Flags [ (0x"):
			v, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(line, "Flags [ (0x"), ")"), 16, 8)
			cur.chained = v&unwFlagChainInfo != 0
		}
	}
	flush()
	o.loadDirs(t, readobj, path)
	return o
}

// peStats counts oracle agreement for one file.
type peStats struct {
	pdata, pdataOK       int // .pdata ranges, those with our start and size
	funcSyms, funcSymsOK int // type-0x20 symbols in code, those that are our starts
	named, namedOK       int // our named functions, names the oracle has at that RVA
	exports, exportsOK   int
	imports, importsOK   int
	relocs, relocsOK     int
	codeView, codeViewOK int
	functions            int
	leafFound            int // functions not in .pdata (leaf functions and the like)
	exportsSkipped       bool
	errs                 []string
}

func (s *peStats) add(o peStats) {
	s.pdata += o.pdata
	s.pdataOK += o.pdataOK
	s.funcSyms += o.funcSyms
	s.funcSymsOK += o.funcSymsOK
	s.named += o.named
	s.namedOK += o.namedOK
	s.exports += o.exports
	s.exportsOK += o.exportsOK
	s.imports += o.imports
	s.importsOK += o.importsOK
	s.relocs += o.relocs
	s.relocsOK += o.relocsOK
	s.codeView += o.codeView
	s.codeViewOK += o.codeViewOK
	s.functions += o.functions
	s.leafFound += o.leafFound
}

func (s *peStats) errorf(format string, args ...any) {
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	} else if len(s.errs) == 10 {
		s.errs = append(s.errs, "...")
	}
}

// comparePE checks img against the oracle.
func comparePE(img *Image, o *peOracle) peStats {
	var st peStats
	st.functions = len(img.Functions)
	// A primary .pdata range that contains its own chained fragment ends
	// where the fragment begins (see pefuncs.go): the oracle's overlapping
	// range is cut the same way before comparing.
	var fragments []uint32
	for _, r := range o.pdata {
		if r.chained {
			fragments = append(fragments, r.rva)
		}
	}
	pdataStart := map[uint32]bool{}
	for _, r := range o.pdata {
		st.pdata++
		pdataStart[r.rva] = true
		want := r.size
		for _, fr := range fragments {
			if fr > r.rva && fr < r.rva+want {
				want = fr - r.rva
			}
		}
		f, ok := img.FunctionAt(r.rva)
		switch {
		case !ok || f.RVA != r.rva:
			st.errorf("pdata %#x+%#x (%s): no function starts there", r.rva, r.size, r.name)
		case f.Size != want || f.Extent != FromPdata:
			st.errorf("pdata %#x+%#x (%s): we have %#x+%#x %s/%s %q", r.rva, want, r.name, f.RVA, f.Size, f.Found, f.Extent, f.Name)
		default:
			st.pdataOK++
		}
	}
	for rva := range o.funcSyms {
		if _, inCode := img.SectionAt(rva); !inCode {
			continue
		}
		if s, _ := img.SectionAt(rva); s.Flags&SectionExec == 0 || rva >= s.RVA+s.Size {
			continue
		}
		st.funcSyms++
		if f, ok := img.FunctionAt(rva); ok && f.RVA == rva {
			st.funcSymsOK++
		} else {
			st.errorf("function symbol %v at %#x: not a function start", o.symbols[rva], rva)
		}
	}
	for _, f := range img.Functions {
		if f.Found&FromPdata == 0 {
			st.leafFound++
		}
		if f.Name == "" {
			if len(o.symbols[f.RVA]) > 0 && pdataStart[f.RVA] {
				st.errorf("function %#x: unnamed, the symbol table has %v", f.RVA, o.symbols[f.RVA])
			}
			continue
		}
		st.named++
		ok := false
		for _, s := range o.symbols[f.RVA] {
			ok = ok || s.name == f.Name
		}
		for _, e := range o.exports {
			ok = ok || (e.rva == f.RVA && e.name == f.Name)
		}
		if ok {
			st.namedOK++
		} else {
			st.errorf("function %#x named %q: oracle has %v", f.RVA, f.Name, o.symbols[f.RVA])
		}
	}
	// Sections: same names (long ones resolved through the string table)
	// and addresses, in file order.
	for i := range max(len(o.secNames), len(img.Sections)) {
		if i >= len(o.secNames) || i >= len(img.Sections) ||
			o.secNames[i] != img.Sections[i].Name || o.secVMA[i]-o.base != uint64(img.Sections[i].RVA) {
			st.errorf("section %d differs from llvm-objdump -h (%d sections, we have %d)", i, len(o.secNames), len(img.Sections))
			break
		}
	}
	// Imports, relocations and CodeView: equal lists.
	st.imports = len(o.imports)
	for i, want := range o.imports {
		switch {
		case i >= len(img.Imports):
			st.errorf("import %d %+v: missing", i, want)
		case img.Imports[i] != want:
			st.errorf("import %d: oracle %+v, we have %+v", i, want, img.Imports[i])
		default:
			st.importsOK++
		}
	}
	if len(img.Imports) > len(o.imports) {
		st.errorf("%d imports, oracle %d", len(img.Imports), len(o.imports))
	}
	st.relocs = len(o.relocs)
	sort.SliceStable(o.relocs, func(i, j int) bool { return o.relocs[i].RVA < o.relocs[j].RVA })
	for i, want := range o.relocs {
		if i < len(img.Relocs) && img.Relocs[i].RVA == want.RVA && img.Relocs[i].Type == want.Type {
			st.relocsOK++
		} else if i < len(img.Relocs) {
			st.errorf("reloc %d: oracle %+v, we have %+v", i, want, img.Relocs[i])
		}
	}
	if len(img.Relocs) != len(o.relocs) {
		st.errorf("%d relocs, oracle %d", len(img.Relocs), len(o.relocs))
	}
	if o.codeView != nil || img.Identity.CodeView != nil {
		st.codeView++
		if o.codeView != nil && img.Identity.CodeView != nil && *o.codeView == *img.Identity.CodeView {
			st.codeViewOK++
		} else {
			st.errorf("CodeView: oracle %+v, we have %+v", o.codeView, img.Identity.CodeView)
		}
	}

	if o.exportsErr != nil {
		st.exportsSkipped = true
		return st
	}
	ours := map[uint32]Export{}
	for _, e := range img.Exports {
		if _, dup := ours[e.Ordinal]; !dup {
			ours[e.Ordinal] = e
		}
	}
	for ord, e := range o.exports {
		st.exports++
		got, ok := ours[ord]
		switch {
		case !ok:
			st.errorf("export %d %q: missing", ord, e.name)
		case got.Name != e.name || (got.RVA != e.rva && got.Forwarder == ""):
			st.errorf("export %d: oracle %q at %#x, we have %q at %#x fw %q", ord, e.name, e.rva, got.Name, got.RVA, got.Forwarder)
		default:
			st.exportsOK++
		}
	}
	return st
}

// peFixtures lists the PE fixtures: the project's (testdata/bin) and this
// package's own (image/testdata/pe).
func peFixtures(t testing.TB) []string {
	var out []string
	for _, pat := range []string{
		testenv.Testdata(t, "bin", "*.exe"), testenv.Testdata(t, "bin", "*.dll"),
		filepath.Join("testdata", "pe", "*.dll"), filepath.Join("testdata", "pe", "*.exe"),
	} {
		m, _ := filepath.Glob(pat)
		out = append(out, m...)
	}
	sort.Strings(out)
	return out
}

// oracleCheck parses each file, runs the oracle on it (in parallel) and
// returns per-file stats in the order of paths.
func oracleCheck(t *testing.T, paths []string) []peStats {
	objdump := testenv.NeedHostTool(t, "llvm-objdump-14", "llvm-objdump")
	readobj := testenv.NeedHostTool(t, "llvm-readobj-14", "llvm-readobj")
	stats := make([]peStats, len(paths))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, p := range paths {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			img, err := Open(p)
			if err != nil {
				stats[i].errs = []string{err.Error()}
				return
			}
			stats[i] = comparePE(img, loadOracle(t, objdump, readobj, p, img.Base))
			if err := headersAgree(img, p); err != nil {
				stats[i].errs = append(stats[i].errs, err.Error())
			}
		}()
	}
	wg.Wait()
	return stats
}

func logStats(t *testing.T, name string, s peStats) {
	if s.exportsSkipped {
		t.Logf("%s: llvm-readobj --coff-exports fails on this file: exports not compared", name)
	}
	t.Logf("%-28s pdata %d/%d  func symbols %d/%d  names %d/%d  exports %d/%d  imports %d/%d  relocs %d/%d  codeview %d/%d  functions %d (%d not in .pdata)",
		name, s.pdataOK, s.pdata, s.funcSymsOK, s.funcSyms, s.namedOK, s.named, s.exportsOK, s.exports,
		s.importsOK, s.imports, s.relocsOK, s.relocs, s.codeViewOK, s.codeView, s.functions, s.leafFound)
}

// TestPEOracleFixtures compares every PE fixture with llvm-readobj
// --unwind/--coff-exports and llvm-objdump --syms: every .pdata range is a
// function with that start and size, every function symbol is a start,
// every name is a symbol (or export) at that address, every export agrees.
func TestPEOracleFixtures(t *testing.T) {
	paths := peFixtures(t)
	require.NotEmpty(t, paths)
	// Go-built PE: windows/amd64 has .pdata, windows/arm64 none (its
	// functions come from the COFF symbol table alone).
	if testenv.HostExec() {
		for _, goarch := range []string{"amd64", "arm64"} {
			paths = append(paths, testenv.GoBuild(t, "testdata/go/v1", "windows", goarch))
		}
	}
	stats := oracleCheck(t, paths)
	var total peStats
	for i, p := range paths {
		s := stats[i]
		name := filepath.Base(p)
		if strings.Contains(p, "gobuild") {
			name = "go " + name + " " + []string{"amd64", "arm64"}[i-(len(paths)-2)]
		}
		logStats(t, name, s)
		total.add(s)
		for _, e := range s.errs {
			t.Errorf("%s: %s", p, e)
		}
	}
	logStats(t, "TOTAL fixtures", total)
}

// TestPEOracleWine runs the same comparison on Wine's x86-64 PE files
// (.dll, .exe, .drv, ...; every file in the directory is a PE). All of
// them (694 files) take about two minutes of oracle time on two idle cores,
// so by default a deterministic sample is checked: every 10th file in name
// order plus the three largest (73 files, 20-40 s depending on load).
// HOTPATCH_PE_ORACLE_ALL=1 checks all of them; -short checks none.
func TestPEOracleWine(t *testing.T) {
	if testenv.Emulated() {
		t.Skip("oracle runs on the host: native leg only")
	}
	if testing.Short() {
		t.Skip("-short: the Wine DLL oracle takes about 25 s")
	}
	entries, err := os.ReadDir(wineDLLDir)
	if err != nil || len(entries) == 0 {
		testenv.Missing(t, "wine64", fmt.Sprintf("no Wine x86-64 PE DLLs in %s", wineDLLDir))
	}
	type sized struct {
		path string
		size int64
	}
	var all []sized
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		all = append(all, sized{filepath.Join(wineDLLDir, e.Name()), info.Size()})
	}
	pick := map[string]bool{}
	if os.Getenv("HOTPATCH_PE_ORACLE_ALL") == "1" {
		for _, s := range all {
			pick[s.path] = true
		}
	} else {
		for i, s := range all {
			if i%10 == 0 {
				pick[s.path] = true
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].size > all[j].size })
		for _, s := range all[:min(3, len(all))] {
			pick[s.path] = true
		}
	}
	var paths []string
	for p := range pick {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	t.Logf("checking %d of %d files (HOTPATCH_PE_ORACLE_ALL=1 for all)", len(paths), len(all))
	stats := oracleCheck(t, paths)
	var total peStats
	bad := 0
	for i, p := range paths {
		total.add(stats[i])
		if stats[i].exportsSkipped {
			logStats(t, filepath.Base(p), stats[i])
		}
		if len(stats[i].errs) > 0 {
			bad++
			logStats(t, filepath.Base(p), stats[i])
			for _, e := range stats[i].errs {
				t.Errorf("%s: %s", filepath.Base(p), e)
			}
		}
	}
	logStats(t, fmt.Sprintf("TOTAL %d Wine PE files", len(paths)), total)
	require.Zero(t, bad, "files disagreeing with the oracle")
}

// headersAgree compares the header fields of img with Go's debug/pe.
func headersAgree(img *Image, path string) error {
	f, err := pe.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
	if !ok {
		return fmt.Errorf("debug/pe: not PE32+")
	}
	want := Identity{
		Machine: f.Machine, TimeDateStamp: f.TimeDateStamp, CheckSum: oh.CheckSum, SizeOfImage: oh.SizeOfImage,
	}
	got := img.Identity
	got.CodeView, got.CodeHash = nil, [32]byte{}
	same := got.Machine == want.Machine && got.TimeDateStamp == want.TimeDateStamp &&
		got.CheckSum == want.CheckSum && got.SizeOfImage == want.SizeOfImage && got.BuildID == nil
	if !same || img.Base != oh.ImageBase || img.Entry != oh.AddressOfEntryPoint || img.Size != oh.SizeOfImage {
		return fmt.Errorf("headers: debug/pe says %+v base %#x entry %#x, we have %+v base %#x entry %#x",
			want, oh.ImageBase, oh.AddressOfEntryPoint, got, img.Base, img.Entry)
	}
	return nil
}
