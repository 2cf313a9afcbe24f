package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/freeport"
	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"go.uber.org/goleak"
)

// coordBin is the coord binary, built once by TestMain (with -race when
// the tests are).
var coordBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "coord-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		coordBin = filepath.Join(dir, "coord")
		args := []string{"build", "-o", coordBin}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
			return 1
		}
		code := m.Run()
		if code == 0 {
			if err := goleak.Find(leaktest.Ignored...); err != nil {
				fmt.Fprintln(os.Stderr, "goroutine leak:", err)
				return 1
			}
		}
		return code
	}())
}

// coordProc is a running `coord serve`.
type coordProc struct {
	name string
	cmd  *exec.Cmd
	logs *logLines
	url  string // the HTTP API, from the "serving" log line
	api  *httpapi.Client
	done chan struct{} // closed when the process has exited
}

// startCoord starts `coord serve` with args (JSON logs, a free API port
// unless args say otherwise, extra environment env) and waits until it
// serves. The process is killed at cleanup if still running.
func startCoord(t *testing.T, name string, env []string, args ...string) *coordProc {
	t.Helper()
	full := append([]string{"serve", "--log-format", "json", "--listen", "127.0.0.1:0", "--log-level", "info"}, args...)
	p := &coordProc{name: name, cmd: exec.Command(coordBin, full...), logs: &logLines{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stderr = p.logs
	p.cmd.Stdout = p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s logs:\n%s", name, p.logs.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for p.url == "" {
		if l, ok := p.logs.find("serving"); ok {
			p.url, _ = l["addr"].(string)
			break
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited before serving: %v\n%s", name, p.cmd.ProcessState, p.logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not serving after 30s:\n%s", name, p.logs.String())
		}
	}
	var err error
	if p.api, err = httpapi.NewClient(p.url); err != nil {
		t.Fatal(err)
	}
	return p
}

// stop sends sig and waits for the exit status.
func (p *coordProc) stop(t *testing.T, sig syscall.Signal, timeout time.Duration) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	return p.wait(t, timeout)
}

func (p *coordProc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("%s still running %v after the signal:\n%s", p.name, timeout, p.logs.String())
		return -1
	}
}

// leader reports whether /healthz says this replica leads.
func (p *coordProc) leader(ctx context.Context) bool {
	h, err := p.api.Health(ctx)
	return err == nil && h.Leader
}

// logLines collects a process's output and parses its JSON log lines.
type logLines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logLines) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// find returns the first JSON log line whose msg is msg.
func (l *logLines) find(msg string) (map[string]any, bool) {
	for _, line := range l.lines() {
		if line["msg"] == msg {
			return line, true
		}
	}
	return nil, false
}

func (l *logLines) lines() []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// runCoord runs the coord binary to completion and returns its exit
// status, stdout and stderr.
func runCoord(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, coordBin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// freeAddrs returns n loopback host:port free at the time of the call.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	addrs, err := freeport.Addrs(n)
	if err != nil {
		t.Fatal(err)
	}
	return addrs
}
