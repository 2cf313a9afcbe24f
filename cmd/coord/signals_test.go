package main

import (
	"context"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/internal/testkit/poll"
)

// The tests below send SIGINT or SIGTERM to `coord serve` in each state it
// can be in and check that it ends within its bound, --shutdown-timeout
// plus shutdownGrace, saying what it was doing. They run with
// --shutdown-timeout 2s: the bound is 7s.
var signalArgs = []string{"--shutdown-timeout", "2s", "--lease-ttl", "2s"}

const signalBound = 2*time.Second + shutdownGrace

// signalAt waits for log line msg, sends sig and returns how long the
// process took to exit, failing past signalBound. It checks the status.
func signalAt(t *testing.T, p *coordProc, msg string, sig syscall.Signal, wantCode int) time.Duration {
	t.Helper()
	poll.Until(t, 30*time.Second, p.name+" logs "+msg, func() (bool, string) {
		_, ok := p.logs.find(msg)
		return ok, "not yet"
	})
	start := time.Now()
	code := p.stop(t, sig, signalBound+time.Second) // a second of slack for the process to be reaped
	took := time.Since(start)
	if code != wantCode {
		t.Fatalf("%s: exit status %d after %v, want %d:\n%s", p.name, code, sig, wantCode, p.logs.String())
	}
	t.Logf("%s exited %v after %v", p.name, took, sig)
	return took
}

// assertStoppedWhile checks the log says the signal came while starting.
func assertStoppedWhile(t *testing.T, p *coordProc, while string) {
	t.Helper()
	l, ok := p.logs.find("stopped by a signal before serving")
	if !ok || l["while"] != while {
		t.Fatalf("%s: no \"stopped by a signal before serving\" while %q in\n%s", p.name, while, p.logs.String())
	}
}

// TestDataDirInUse: a second `coord serve` on a data directory in use
// (other ports) exits at once, naming the directory and the process that
// holds it; the first goes on serving.
func TestDataDirInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addrs := freeAddrs(t, 4)
	first := startCoord(t, "first", nil, "--data-dir", dir, "--embedded-client-url", "http://"+addrs[0], "--embedded-peer-url", "http://"+addrs[1])

	start := time.Now()
	code, _, stderr := runCoord(t, "serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--embedded-client-url", "http://"+addrs[2], "--embedded-peer-url", "http://"+addrs[3])
	took := time.Since(start)
	want := "coord serve: --data-dir " + dir + " is in use by process " + strconv.Itoa(first.cmd.Process.Pid) + " (it holds " + filepath.Join(dir, lockFileName) + "); stop that process, or give this one another --data-dir\n"
	if code != 1 || !strings.HasSuffix(stderr, want) {
		t.Fatalf("second coord serve: exit %d after %v, stderr %q\nwant exit 1 ending %q", code, took, stderr, want)
	}
	if took > 5*time.Second {
		t.Errorf("second coord serve took %v to refuse, want seconds at most", took)
	}
	if _, err := first.api.Health(context.Background()); err != nil {
		t.Fatalf("first coord after the second was refused: %v", err)
	}
}

// TestSignalWhileStartingEtcd: etcd's database in the data directory is
// held by another etcd (not a coord, so the lock file does not tell), and
// the embedded etcd waits for it without limit; SIGTERM still ends coord.
func TestSignalWhileStartingEtcd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	other, err := etcdtest.StartDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	addrs := freeAddrs(t, 2)
	p := launchCoord(t, "coord", nil, append([]string{"--data-dir", dir, "--embedded-client-url", "http://" + addrs[0], "--embedded-peer-url", "http://" + addrs[1]}, signalArgs...)...)
	signalAt(t, p, "starting embedded etcd", syscall.SIGTERM, 0)
	assertStoppedWhile(t, p, "starting the embedded etcd")
}

// TestSignalWhileConnecting: the etcd endpoint accepts connections and
// never answers; with a request timeout of a minute, SIGINT ends coord at
// once.
func TestSignalWhileConnecting(t *testing.T) {
	t.Parallel()
	ln := blackhole(t)
	p := launchCoord(t, "coord", nil, append([]string{"--etcd", ln, "--request-timeout", "1m"}, signalArgs...)...)
	signalAt(t, p, "connecting to etcd", syscall.SIGINT, 0)
	assertStoppedWhile(t, p, "connecting to etcd")
}

// TestSignalWhileStandby: a replica that does not lead stops on SIGTERM
// in order, and the leader leads on.
func TestSignalWhileStandby(t *testing.T) {
	t.Parallel()
	etcd := etcdtest.Start(t)
	args := append([]string{"--etcd", etcd.Endpoints[0], "--prefix", "/standby", "--request-timeout", "2s"}, signalArgs...)
	ctx := context.Background()
	leader := startCoord(t, "leader", nil, args...)
	poll.Until(t, 10*time.Second, "leader leads", func() (bool, string) { return leader.leader(ctx), "not leading" })
	standby := startCoord(t, "standby", nil, args...)
	if standby.leader(ctx) {
		t.Fatal("two leaders")
	}
	signalAt(t, standby, "serving", syscall.SIGTERM, 0)
	assertInOrder(t, standby.logs, "shutting down: finishing requests in flight (signal again to exit at once)", "http server stopped", "replica stopped; its lease is revoked")
	if !leader.leader(ctx) {
		t.Fatal("the leader stopped leading when the standby stopped")
	}
}

// TestSignalWhileEtcdGone: etcd stops while coord serves; SIGTERM still
// ends coord within its bound, though its lease cannot be revoked.
func TestSignalWhileEtcdGone(t *testing.T) {
	t.Parallel()
	etcd, err := etcdtest.StartDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Close)
	p := startCoord(t, "coord", nil, append([]string{"--etcd", etcd.Endpoints[0], "--request-timeout", "1s"}, signalArgs...)...)
	ctx := context.Background()
	poll.Until(t, 10*time.Second, "coord leads", func() (bool, string) { return p.leader(ctx), "not leading" })
	etcd.Close()
	signalAt(t, p, "serving", syscall.SIGTERM, 0)
}

// blackhole listens on a loopback port, accepts connections and never
// answers them; it returns the address.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TestBoundShutdown: after the signal, a serve that does not return in
// time is ended with status 1 and a log line; one that does is not.
func TestBoundShutdown(t *testing.T) {
	for _, returns := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		exited := make(chan int, 1)
		var logs logLines
		log := newLogger(&logs, logConfig{format: "json"})
		stopped := make(chan struct{})
		limit := time.Minute // never reached when serve returns
		if !returns {
			limit = 50 * time.Millisecond
		}
		release := boundShutdown(ctx, func() { close(stopped) }, limit, log, func(code int) { exited <- code })
		cancel()
		<-stopped // a second signal now gets its default action
		if returns {
			release()
			select {
			case code := <-exited:
				t.Fatalf("exit(%d) though serve returned", code)
			default:
			}
			continue
		}
		select {
		case code := <-exited:
			if _, ok := logs.find("shutdown did not finish in time; exiting now"); code != 1 || !ok {
				t.Fatalf("exit(%d), logs %s", code, logs.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no exit past the limit")
		}
		release()
	}
}
