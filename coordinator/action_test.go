package coordinator

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEveryEmittedActionIsListed reads the package's source. An Action
// reaches Observer.Recovery only as one of the Action constants (or a
// variable holding one): no Recovery call is given a string literal, which
// Go would turn into an Action silently, and nothing converts to Action.
// Every Action constant is in Actions(), which is what the metrics create
// their series from (see coordinator/metrics). So an action emitted that
// the metrics do not know fails here.
func TestEveryEmittedActionIsListed(t *testing.T) {
	listed := map[string]bool{}
	for _, a := range Actions() {
		listed[string(a)] = true
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	constants := map[string]string{} // name → value
	calls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		text := func(n ast.Node) string {
			return string(src[fset.Position(n.Pos()).Offset:fset.Position(n.End()).Offset])
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				if id, ok := n.Type.(*ast.Ident); ok && id.Name == "Action" {
					for i, v := range n.Values {
						lit, ok := v.(*ast.BasicLit)
						if !ok {
							t.Errorf("%s: Action constant %s is not a literal", fset.Position(n.Pos()), n.Names[i].Name)
							continue
						}
						constants[n.Names[i].Name] = strings.Trim(lit.Value, `"`)
					}
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "Action" {
					t.Errorf("%s: %s makes an Action outside the constants", fset.Position(n.Pos()), text(n))
				}
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Recovery" || len(n.Args) != 2 {
					return true
				}
				calls++
				if _, ok := n.Args[0].(*ast.Ident); !ok {
					t.Errorf("%s: Recovery emits %s, expected one of the Action constants", fset.Position(n.Pos()), text(n.Args[0]))
				}
			}
			return true
		})
	}
	if calls == 0 {
		t.Error("found no Recovery call: the test no longer reads the emitters")
	}
	for name, value := range constants {
		if !listed[value] {
			t.Errorf("%s = %q is not in Actions() %v: the metrics would not create its series", name, value, Actions())
		}
	}
	if len(constants) != len(Actions()) {
		t.Errorf("%d Action constants, %d in Actions()", len(constants), len(Actions()))
	}
}
