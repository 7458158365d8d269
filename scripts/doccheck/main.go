// Command doccheck lists the exported names that have no doc comment (and
// the packages without a package comment) in the given package directories:
// what `go vet` and staticcheck do not report. It exits 1 when it lists any.
//
//	go run ./scripts/doccheck $(go list -f '{{.Dir}}' ./...)
package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	var all []string
	for _, dir := range os.Args[1:] {
		f, err := check(dir)
		if err != nil {
			fmt.Fprintf(os.Stderr, "doccheck: %v\n", err)
			os.Exit(2)
		}
		all = append(all, f...)
	}
	for _, f := range all {
		fmt.Println(f)
	}
	if len(all) > 0 {
		os.Exit(1)
	}
}

// check returns one line per undocumented exported name of the package in
// dir (test files left out): "file:line: what name".
func check(dir string) ([]string, error) {
	var out []string
	{
		fset := token.NewFileSet()
		// Every non-test file, whatever its build tags: windows- and
		// arm64-only files export names too.
		names, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			return nil, err
		}
		pkgs := map[string]*pkgFiles{}
		for _, name := range names {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
			if err != nil {
				return nil, err
			}
			p := pkgs[f.Name.Name]
			if p == nil {
				p = &pkgFiles{Name: f.Name.Name}
				pkgs[f.Name.Name] = p
			}
			p.Files = append(p.Files, f)
		}
		for _, p := range pkgs {
			hasPkgDoc := false
			for _, f := range p.Files {
				if f.Doc != nil {
					hasPkgDoc = true
				}
				for _, d := range f.Decls {
					switch d := d.(type) {
					case *ast.FuncDecl:
						if !d.Name.IsExported() || d.Doc != nil {
							continue
						}
						if d.Recv != nil {
							t := d.Recv.List[0].Type
							if s, ok := t.(*ast.StarExpr); ok {
								t = s.X
							}
							if ix, ok := t.(*ast.IndexExpr); ok {
								t = ix.X
							}
							if id, ok := t.(*ast.Ident); ok && !id.IsExported() {
								continue
							}
							out = append(out, fmt.Sprintf("%s: method %s.%s", fset.Position(d.Pos()), recvName(d), d.Name.Name))
							continue
						}
						out = append(out, fmt.Sprintf("%s: func %s", fset.Position(d.Pos()), d.Name.Name))
					case *ast.GenDecl:
						for _, s := range d.Specs {
							switch s := s.(type) {
							case *ast.TypeSpec:
								if s.Name.IsExported() && d.Doc == nil && s.Doc == nil {
									out = append(out, fmt.Sprintf("%s: type %s", fset.Position(s.Pos()), s.Name.Name))
								}
							case *ast.ValueSpec:
								for _, n := range s.Names {
									if n.IsExported() && d.Doc == nil && s.Doc == nil && s.Comment == nil {
										out = append(out, fmt.Sprintf("%s: value %s", fset.Position(n.Pos()), n.Name))
									}
								}
							}
						}
					}
				}
			}
			if !hasPkgDoc && p.Name != "main" {
				out = append(out, fmt.Sprintf("%s: package %s has no package comment", dir, p.Name))
			}
		}
	}
	return out, nil
}

// pkgFiles is the parsed files of one package.
type pkgFiles struct {
	Name  string
	Files []*ast.File
}

// recvName is the receiver's type name.
func recvName(d *ast.FuncDecl) string {
	t := d.Recv.List[0].Type
	if s, ok := t.(*ast.StarExpr); ok {
		t = s.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name
	}
	return "?"
}
