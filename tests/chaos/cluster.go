package chaos

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concord-tx/concord/internal/testkit/freeport"
)

// Member is one etcd member process.
type Member struct {
	Name       string
	ClientAddr string // host:port clients (and proxies) dial
	PeerAddr   string // where the member listens for its peers
	// PeerProxy forwards to PeerAddr; its address is the member's
	// advertised peer URL, so every peer connection to the member passes
	// through it (peers.go).
	PeerProxy *Proxy
	*Process
}

// Cluster is an etcd cluster of real processes on loopback, built from the
// etcd module this repository depends on.
type Cluster struct {
	Members []*Member
	cli     *clientv3.Client // direct to every member, for the suite's own reads

	mu      sync.Mutex
	members map[*Member]*clientv3.Client // one member each, made on demand
}

// StartCluster starts n members in dir and waits until they agree on a
// leader.
func StartCluster(ctx context.Context, bin, dir string, n int) (*Cluster, error) {
	c := &Cluster{members: make(map[*Member]*clientv3.Client)}
	var peers []string
	for i := range n {
		ports, err := freePorts(3)
		if err != nil {
			c.Close()
			return nil, err
		}
		m := &Member{Name: fmt.Sprintf("etcd-%d", i), ClientAddr: ports[0], PeerAddr: ports[1]}
		m.PeerProxy, err = NewPeerProxy(m.Name+"-peers", ports[2], m.PeerAddr, c.dialer)
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Members = append(c.Members, m)
		peers = append(peers, fmt.Sprintf("%s=http://%s", m.Name, m.PeerProxy.Addr()))
	}
	token := filepath.Base(dir)
	for _, m := range c.Members {
		args := []string{
			"--name", m.Name,
			"--data-dir", filepath.Join(dir, m.Name+".data"),
			"--listen-client-urls", "http://" + m.ClientAddr,
			"--advertise-client-urls", "http://" + m.ClientAddr,
			"--listen-peer-urls", "http://" + m.PeerAddr,
			"--initial-advertise-peer-urls", "http://" + m.PeerProxy.Addr(),
			"--initial-cluster", strings.Join(peers, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--heartbeat-interval", "100",
			"--election-timeout", "1000",
			"--snapshot-count", "5000",
			"--logger", "zap",
			"--log-level", "warn",
		}
		m.Process = NewProcess(m.Name, bin, args, nil, filepath.Join(dir, m.Name+".log"))
		if err := m.Start(); err != nil {
			c.Close()
			return nil, err
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            c.Endpoints(),
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		c.Close()
		return nil, err
	}
	c.cli = cli
	if err := c.WaitHealthy(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Endpoints are the members' client addresses.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientAddr)
	}
	return eps
}

// Client is a client of every member, bypassing the proxies, for the
// suite's own reads, watches and compactions.
func (c *Cluster) Client() *clientv3.Client { return c.cli }

// Status asks one member for its view: its id and the leader's.
func (c *Cluster) Status(ctx context.Context, m *Member) (id, leader uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	st, err := c.cli.Status(ctx, m.ClientAddr)
	if err != nil {
		return 0, 0, err
	}
	return st.Header.MemberId, st.Leader, nil
}

// WaitHealthy waits until every running member answers and all name the
// same leader, and a linearizable read succeeds.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	var last error
	for {
		last = c.healthy(ctx)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcd cluster not healthy: %w (last: %v)", ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	var leader uint64
	for _, m := range c.Members {
		if !m.Running() || m.Paused() {
			continue
		}
		_, l, err := c.Status(ctx, m)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Name, err)
		}
		if l == 0 {
			return fmt.Errorf("%s: no leader", m.Name)
		}
		if leader != 0 && l != leader {
			return fmt.Errorf("%s: leader %x, others say %x", m.Name, l, leader)
		}
		leader = l
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := c.cli.Get(rctx, "health")
	return err
}

// Leader returns the member that leads, and the others.
func (c *Cluster) Leader(ctx context.Context) (*Member, []*Member, error) {
	ids := make(map[uint64]*Member)
	var leader uint64
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		id, l, err := c.Status(ctx, m)
		if err != nil {
			continue
		}
		ids[id] = m
		if l != 0 {
			leader = l
		}
	}
	lm := ids[leader]
	if lm == nil {
		return nil, nil, errors.New("no leader known")
	}
	var followers []*Member
	for _, m := range c.Members {
		if m != lm && m.Running() {
			followers = append(followers, m)
		}
	}
	return lm, followers, nil
}

// Compact compacts the history up to the current revision.
func (c *Cluster) Compact(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := c.cli.Get(ctx, "compaction-probe")
	if err != nil {
		return 0, err
	}
	_, err = c.cli.Compact(ctx, resp.Header.Revision)
	return resp.Header.Revision, err
}

// MemberClient is a client of m alone, bypassing the proxies: what a
// client of that member sees.
func (c *Cluster) MemberClient(m *Member) (*clientv3.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.members == nil {
		return nil, errors.New("cluster closed")
	}
	if cli := c.members[m]; cli != nil {
		return cli, nil
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:            []string{m.ClientAddr},
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    time.Second,
		DialKeepAliveTimeout: time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		return nil, err
	}
	c.members[m] = cli
	return cli, nil
}

// Close kills every member and closes the clients and the peer proxies.
func (c *Cluster) Close() {
	if c.cli != nil {
		c.cli.Close()
	}
	c.mu.Lock()
	for _, cli := range c.members {
		cli.Close()
	}
	c.members = nil
	c.mu.Unlock()
	for _, m := range c.Members {
		if m.Process != nil {
			m.Kill()
		}
		m.PeerProxy.Close()
	}
}

// freePorts returns n loopback addresses whose ports were free a moment ago.
func freePorts(n int) ([]string, error) { return freeport.Addrs(n) }
