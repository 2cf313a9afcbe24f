package conformance

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is one run of the participant command, in a process group of its
// own so that a command line that starts several processes (a gateway and
// its service) is stopped or killed as a whole.
type process struct {
	instance int
	cmd      *exec.Cmd
	logPath  string
	done     chan struct{} // closed when the process has exited
	err      error         // its exit status, once done
}

// start runs the command as instance (1 or 2) with the environment of
// PROTOCOL.md §11.
func (s *suite) start(instance int) (*process, error) {
	s.runs++
	logPath := filepath.Join(s.dir, fmt.Sprintf("participant-%d.run-%02d.log", instance, s.runs))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/bin/sh", "-c", s.cfg.Command)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Env = append(os.Environ(),
		"CONCORD_ETCD_ENDPOINTS="+s.endpoints,
		"CONCORD_PARTICIPANT="+s.cfg.Name,
		"CONCORD_PREFIX="+s.cfg.Prefix,
		fmt.Sprintf("CONCORD_LEASE_TTL=%d", int(s.cfg.LeaseTTL/time.Second)),
		"CONCORD_STATE_DIR="+s.stateDir,
		fmt.Sprintf("CONCORD_INSTANCE=%d", instance),
	)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %q: %w", s.cfg.Command, err)
	}
	p := &process{instance: instance, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signal sends sig to the process's group.
func (p *process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
}

// kill ends the group at once (kill -9) and waits for the process.
func (p *process) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
	for end := time.Now().Add(5 * time.Second); p.groupAlive() && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond) // SIGKILL is delivered, not yet acted on
	}
}

// stop asks the group to shut down (SIGTERM) and waits up to grace for
// every process of the group to exit (a shell may have passed the signal
// on to a child that is still shutting down); what is left is killed
// after that, and stop reports it.
func (p *process) stop(grace time.Duration) error {
	p.signal(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for time.Now().Before(deadline) {
		if p.exited() && !p.groupAlive() {
			return nil
		}
		<-t.C
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("instance %d did not exit within %v of SIGTERM; killed (log %s)", p.instance, grace, p.logPath)
}

// groupAlive reports whether a process of the group is still running.
// Zombies do not count: a child the shell left behind is reparented, and
// not every init reaps (a container's often does not).
func (p *process) groupAlive() bool {
	pgid := p.cmd.Process.Pid
	if syscall.Kill(-pgid, 0) != nil {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return true // no /proc: the signal's answer is all there is
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses.
		rest := string(b)
		if i := strings.LastIndexByte(rest, ')'); i >= 0 {
			rest = rest[i+1:]
		}
		f := strings.Fields(rest)
		if len(f) >= 3 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}
