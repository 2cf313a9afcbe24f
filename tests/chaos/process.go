package chaos

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is one child process of the system under test: a binary, its
// arguments and a log file that every start appends to. It can be killed
// with SIGKILL, paused with SIGSTOP, resumed and started again with the same
// arguments. A process that exits without being killed is recorded as a
// crash, which the checks report.
type Process struct {
	Name    string
	bin     string
	args    []string
	env     []string
	logPath string

	mu struct {
		sync.Mutex
		cmd     *exec.Cmd
		exited  chan struct{} // closed when the current run has exited
		killing bool          // the current run is being killed on purpose
		paused  bool
		starts  int
		crashes []string // exits nobody asked for
	}
}

// NewProcess describes a process; Start runs it. Its stdout and stderr go
// to logPath.
func NewProcess(name, bin string, args []string, env []string, logPath string) *Process {
	p := &Process{Name: name, bin: bin, args: args, env: env, logPath: logPath}
	return p
}

// LogPath is the file the process writes to.
func (p *Process) LogPath() string { return p.logPath }

// Start runs the process. It fails if it is already running.
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd != nil {
		return fmt.Errorf("%s: already running (pid %d)", p.Name, p.mu.cmd.Process.Pid)
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own copy of the descriptor
	p.mu.starts++
	fmt.Fprintf(f, "=== chaos: start #%d of %s at %s: %s %q\n", p.mu.starts, p.Name, time.Now().Format(time.RFC3339Nano), p.bin, p.args)
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true, // a terminal's ^C goes to the test only
		// If the test binary dies, so do its children: no leftovers.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	p.mu.cmd, p.mu.exited, p.mu.killing, p.mu.paused = cmd, exited, false, false
	go p.wait(cmd, exited, p.mu.starts)
	return nil
}

func (p *Process) wait(cmd *exec.Cmd, exited chan struct{}, start int) {
	err := cmd.Wait()
	p.mu.Lock()
	if !p.mu.killing {
		p.mu.crashes = append(p.mu.crashes, fmt.Sprintf("%s (start #%d, pid %d) exited on its own at %s: %v",
			p.Name, start, cmd.Process.Pid, time.Now().Format(time.RFC3339Nano), describeExit(err)))
	}
	p.mu.cmd = nil
	p.mu.paused = false
	p.mu.Unlock()
	if f, ferr := os.OpenFile(p.logPath, os.O_WRONLY|os.O_APPEND, 0o644); ferr == nil {
		fmt.Fprintf(f, "=== chaos: %s (pid %d) exited at %s: %v\n", p.Name, cmd.Process.Pid, time.Now().Format(time.RFC3339Nano), describeExit(err))
		f.Close()
	}
	close(exited)
}

func describeExit(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return "killed by " + ws.Signal().String()
		}
		return fmt.Sprintf("exit status %d", ee.ExitCode())
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// Running reports whether the process is running (paused counts).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.cmd != nil
}

// Paused reports whether the process is stopped by SIGSTOP.
func (p *Process) Paused() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.paused
}

// Pid returns the pid of the current run, or 0.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd == nil {
		return 0
	}
	return p.mu.cmd.Process.Pid
}

// Kill sends SIGKILL and waits until the process has exited. Killing a
// process that is not running does nothing.
func (p *Process) Kill() error {
	p.mu.Lock()
	cmd, exited := p.mu.cmd, p.mu.exited
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	p.mu.killing = true
	p.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: kill: %w", p.Name, err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s: pid %d still there 10s after SIGKILL", p.Name, cmd.Process.Pid)
	}
}

// Pause sends SIGSTOP.
func (p *Process) Pause() error { return p.signal(syscall.SIGSTOP, true) }

// Resume sends SIGCONT.
func (p *Process) Resume() error { return p.signal(syscall.SIGCONT, false) }

func (p *Process) signal(sig syscall.Signal, paused bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mu.cmd == nil {
		return fmt.Errorf("%s: not running", p.Name)
	}
	if err := p.mu.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("%s: %v: %w", p.Name, sig, err)
	}
	p.mu.paused = paused
	return nil
}

// Restart kills the process if it runs and starts it again.
func (p *Process) Restart() error {
	if err := p.Kill(); err != nil {
		return err
	}
	return p.Start()
}

// Crashes lists the exits nobody asked for.
func (p *Process) Crashes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.mu.crashes...)
}

// Starts is how many times the process was started.
func (p *Process) Starts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.starts
}
