package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// child is a server process of the deployed benchmark: started with its
// output in a log file, stopped with SIGTERM (then SIGKILL) by stop, which
// also waits for it. The goroutine waiting for it ends when it exits.
type child struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // how it exited, once done is closed
}

// stopGrace is how long a child has to exit after SIGTERM before it is
// killed.
const stopGrace = 30 * time.Second

// startChild starts bin with args, its output in dir/name.log, in a
// process group of its own (a Ctrl-C at the terminal reaches this process
// only, which stops the children in order), with none of the CONCORD_ and
// DEMO_ variables of this environment (they would change its flags), and,
// on Linux, told to stop should this process die first.
func startChild(dir, name, bin string, args ...string) (*child, error) {
	c := &child{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(c.log)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	c.cmd = exec.Command(bin, args...)
	c.cmd.Stdout, c.cmd.Stderr = f, f
	c.cmd.SysProcAttr = sysProcAttr()
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CONCORD_") && !strings.HasPrefix(kv, "DEMO_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// await polls ready until it succeeds, the child exits, ctx ends or a
// minute has passed.
func (c *child) await(ctx context.Context, ready func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := ready(rctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("%s (pid %d) exited before it was ready: %v\n%s", c.name, c.pid(), c.err, c.logTail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) not ready after a minute: %w\n%s", c.name, c.pid(), err, c.logTail())
		}
	}
}

// stop sends SIGTERM to the child (its process group, on Linux), waits
// for it to exit, and kills the group if it has not within stopGrace. An error says it had to be killed or had exited
// on its own with an error.
func (c *child) stop() error {
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("%s (pid %d) had exited: %v\n%s", c.name, c.pid(), c.err, c.logTail())
		}
		return nil
	default:
	}
	if err := c.signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("%s (pid %d): SIGTERM: %w", c.name, c.pid(), err)
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-c.done:
		if c.err != nil {
			return fmt.Errorf("%s (pid %d) stopped with %v\n%s", c.name, c.pid(), c.err, c.logTail())
		}
		return nil
	case <-t.C:
		if c.signal(syscall.SIGKILL) != nil {
			c.cmd.Process.Kill() // the child at least, so that it can be waited for
		}
		<-c.done
		return fmt.Errorf("%s (pid %d) did not stop within %v of SIGTERM: killed\n%s", c.name, c.pid(), stopGrace, c.logTail())
	}
}

// logTail is the end of the child's log, for errors.
func (c *child) logTail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf("--- end of %s ---\n%s", c.log, b)
}

// childrenCPU is each child's CPU time so far.
func childrenCPU(children []*child) ([]time.Duration, error) {
	out := make([]time.Duration, len(children))
	for i, c := range children {
		d, err := processCPUOf(c.pid())
		if err != nil {
			return nil, fmt.Errorf("CPU time of %s (pid %d): %w", c.name, c.pid(), err)
		}
		out[i] = d
	}
	return out, nil
}

// loopbackAddrs returns n loopback addresses with ports free at the time
// of the call, all different.
func loopbackAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
