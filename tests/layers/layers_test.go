package layers

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/concord-tx/concord"

// The layers, lowest first. A package imports only packages of its own
// layer or lower ones, with the exceptions in TestLayers.
const (
	layerProtocol = iota // the contract
	layerRuntime         // internal runtime building blocks
	layerCore            // coordinator, participant
	layerService         // httpapi, coordinator/metrics, participant/sqlhandler
	layerCommand         // cmd/...
	layerTests           // tests/..., examples/...
)

var layerNames = []string{"protocol", "internal runtime", "coordinator/participant", "httpapi/metrics", "cmd", "tests"}

// layerOf places a package of the module; ok is false for a package the
// test does not know, which must be placed here when it is added.
func layerOf(path string) (layer int, ok bool) {
	rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
	switch {
	case rel == "protocol":
		return layerProtocol, true
	case rel == "internal/testkit" || strings.HasPrefix(rel, "internal/testkit/"):
		return layerTests, true // test helpers: see TestTestkitOnlyInTests
	case strings.HasPrefix(rel, "internal/"):
		return layerRuntime, true
	case rel == "coordinator" || rel == "participant":
		return layerCore, true
	case rel == "coordinator/metrics" || rel == "httpapi" || rel == "participant/sqlhandler":
		return layerService, true
	case strings.HasPrefix(rel, "cmd/"):
		return layerCommand, true
	case strings.HasPrefix(rel, "tests/") || strings.HasPrefix(rel, "examples/"):
		return layerTests, true
	}
	return 0, false
}

type pkg struct {
	ImportPath   string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

// watchSources stats every Go file of the module, so that go test's cache
// (which sees what the test reads, not what go list reads) runs the test
// again when an import changes.
func watchSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && path != "../.." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod") {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// list runs go list -json over args and decodes its stream of packages.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	watchSources(t)
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list %v: %v\n%s", args, err, ee.Stderr)
		}
		t.Fatalf("go list %v: %v", args, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkg
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

func ours(path string) bool { return path == module || strings.HasPrefix(path, module+"/") }

// TestLayers: cmd → (httpapi, coordinator/metrics) → (coordinator,
// participant) → internal runtime → protocol. No package imports one on
// a higher layer, and coordinator and participant never import each
// other. Test files may import anything.
func TestLayers(t *testing.T) {
	pkgs := list(t, module+"/...")
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages, expected the whole module", len(pkgs))
	}
	for _, p := range pkgs {
		from, ok := layerOf(p.ImportPath)
		if !ok {
			t.Errorf("%s is on no layer: place it in layerOf", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !ours(imp) {
				continue
			}
			to, ok := layerOf(imp)
			if !ok {
				continue // reported as a package of its own
			}
			if to > from {
				t.Errorf("%s (layer %s) imports %s (layer %s), a higher layer", p.ImportPath, layerNames[from], imp, layerNames[to])
			}
			if from == layerCore && to == layerCore && p.ImportPath != imp {
				t.Errorf("%s imports %s: coordinator and participant share only protocol and the runtime", p.ImportPath, imp)
			}
		}
	}
}

// TestTestkitOnlyInTests: internal/testkit is imported only by tests
// (test files, the packages under tests/) and by itself.
func TestTestkitOnlyInTests(t *testing.T) {
	for _, p := range list(t, module+"/...") {
		if strings.HasPrefix(p.ImportPath, module+"/tests/") || strings.HasPrefix(p.ImportPath, module+"/internal/testkit") {
			continue
		}
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, module+"/internal/testkit") {
				t.Errorf("%s imports the test helper %s outside its tests", p.ImportPath, imp)
			}
		}
	}
}

// TestNoTestingInBinaries: no command links the testing package (or a
// test helper) into its binary.
func TestNoTestingInBinaries(t *testing.T) {
	watchSources(t)
	cmd := exec.Command("go", "list", "-deps", module+"/cmd/...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages, expected the commands' dependencies", len(deps))
	}
	for _, d := range deps {
		if d == "testing" || strings.HasPrefix(d, "testing/") || strings.HasPrefix(d, module+"/internal/testkit") {
			t.Errorf("a command depends on %s", d)
		}
	}
}
