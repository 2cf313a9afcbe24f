package chaos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Binaries builds the programs the suite runs, once per test binary, into
// one directory: etcd from the module this repository depends on, and the
// repository's own commands.
type Binaries struct {
	Dir  string
	Race bool // build the repository's commands with the race detector

	mu    sync.Mutex
	built map[string]*build
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Packages the suite knows how to build, by binary name.
var packages = map[string]string{
	"etcd":             "go.etcd.io/etcd/server/v3",
	"coord":            "./cmd/coord",
	"demo-participant": "./cmd/demo-participant",
}

// Path builds binary name if it was not built yet and returns its path.
func (b *Binaries) Path(name string) (string, error) {
	b.mu.Lock()
	if b.built == nil {
		b.built = make(map[string]*build)
	}
	bd := b.built[name]
	if bd == nil {
		bd = &build{}
		b.built[name] = bd
	}
	b.mu.Unlock()
	bd.once.Do(func() { bd.path, bd.err = b.build(name) })
	return bd.path, bd.err
}

func (b *Binaries) build(name string) (string, error) {
	pkg, ok := packages[name]
	if !ok {
		return "", fmt.Errorf("chaos: no package for binary %q", name)
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	out := filepath.Join(b.Dir, name)
	args := []string{"build", "-o", out}
	if b.Race && strings.HasPrefix(pkg, "./") {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("chaos: go %s (in %s): %v\n%s", strings.Join(append(args, pkg), " "), root, err, buf.String())
	}
	// Opening the fresh binary keeps go test from caching a result that
	// depends on sources its own build does not cover.
	if f, err := os.Open(out); err == nil {
		f.Close()
	}
	return out, nil
}

// moduleRoot is the directory of the main module's go.mod.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("chaos: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("chaos: not inside a module (go env GOMOD is %q)", mod)
	}
	return filepath.Dir(mod), nil
}
