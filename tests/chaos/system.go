package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// Config describes the system under test.
type Config struct {
	Dir      string // run directory: data, logs, history
	Seed     uint64
	Members  int      // etcd members
	Coords   int      // coordinator replicas
	Banks    []string // bank (participant) names
	Accounts []string // accounts in every bank
	Opening  int64    // opening balance of every account
	LeaseTTL time.Duration
	Prefix   string
	// Retention of terminal records before the coordinators delete them.
	// Longer than a client's retries of one transfer (see Traffic), so
	// that a retry never begins anew a transaction already collected.
	Retention time.Duration
	// Stores: a bank's --store (its accounts on PostgreSQL or SQLite); a
	// bank not named keeps a bbolt file in Dir.
	Stores map[string]string
	// FaultBanks: the banks the bank faults may hit; empty, every bank.
	FaultBanks []string
}

// Service is one coordinator replica or bank: a process whose every etcd
// connection goes through a proxy of its own, one per member, so that its
// links can be cut or slowed without touching anybody else's.
type Service struct {
	Name     string
	Kind     string // "coord" or "bank"
	HTTPAddr string
	Proxies  []*Proxy // one per etcd member, in member order
	// Gate is a bank's commit gate: while the file is missing, the bank's
	// Commit handler waits before it touches its store.
	Gate string
	*Process
}

// OpenGate lets the bank's commits through.
func (s *Service) OpenGate() error { return os.WriteFile(s.Gate, nil, 0o644) }

// CloseGate holds the bank's commits inside the Commit handler.
func (s *Service) CloseGate() error { return os.Remove(s.Gate) }

// URL is the service's HTTP base URL.
func (s *Service) URL() string { return "http://" + s.HTTPAddr }

// SetLinks applies f to every link of the service.
func (s *Service) SetLinks(f LinkFaults) {
	for _, p := range s.Proxies {
		p.Set(f)
	}
}

// System is the running system: an etcd cluster, coordinator replicas and
// banks, each a real process, and the observer watching etcd.
type System struct {
	Cfg      Config
	Keys     protocol.Keys
	Cluster  *Cluster
	Coords   []*Service
	Banks    []*Service
	Observer *Observer
}

// StartSystem starts everything and waits until it is ready.
func StartSystem(ctx context.Context, b *Binaries, cfg Config) (sys *System, err error) {
	keys, err := protocol.NewKeys(cfg.Prefix)
	if err != nil {
		return nil, err
	}
	etcdBin, err := b.Path("etcd")
	if err != nil {
		return nil, err
	}
	coordBin, err := b.Path("coord")
	if err != nil {
		return nil, err
	}
	bankBin, err := b.Path("demo-participant")
	if err != nil {
		return nil, err
	}
	s := &System{Cfg: cfg, Keys: keys}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.Cluster, err = StartCluster(ctx, etcdBin, cfg.Dir, cfg.Members)
	if err != nil {
		return nil, err
	}
	s.Observer, err = StartObserver(ctx, s.Cluster.Client(), keys, filepath.Join(cfg.Dir, "etcd-events.log"))
	if err != nil {
		return nil, err
	}
	var accounts []string
	for _, a := range cfg.Accounts {
		accounts = append(accounts, fmt.Sprintf("%s=%d", a, cfg.Opening))
	}
	for i, name := range cfg.Banks {
		svc, err := s.newService(name, "bank", uint64(i))
		if err != nil {
			return nil, err
		}
		svc.Process = NewProcess(name, bankBin, []string{"serve",
			"--name", name,
			"--etcd", strings.Join(proxyAddrs(svc.Proxies), ","),
			storeFlag(cfg, name), storeValue(cfg, name),
			"--listen", svc.HTTPAddr,
			"--accounts", strings.Join(accounts, ","),
			"--lease-ttl", cfg.LeaseTTL.String(),
			"--prefix", cfg.Prefix,
			"--commit-gate", svc.Gate,
		}, nil, filepath.Join(cfg.Dir, name+".log"))
		if err := svc.OpenGate(); err != nil {
			return nil, err
		}
		s.Banks = append(s.Banks, svc)
	}
	for i := range cfg.Coords {
		name := fmt.Sprintf("coord-%d", i)
		svc, err := s.newService(name, "coord", uint64(100+i))
		if err != nil {
			return nil, err
		}
		svc.Process = NewProcess(name, coordBin, []string{"serve",
			"--etcd", strings.Join(proxyAddrs(svc.Proxies), ","),
			"--listen", svc.HTTPAddr,
			"--lease-ttl", cfg.LeaseTTL.String(),
			"--prefix", cfg.Prefix,
			"--retention", cfg.Retention.String(),
		}, nil, filepath.Join(cfg.Dir, name+".log"))
		s.Coords = append(s.Coords, svc)
	}
	for _, svc := range s.Services() {
		if err := svc.Start(); err != nil {
			return nil, err
		}
	}
	if err := s.WaitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *System) newService(name, kind string, n uint64) (*Service, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	svc := &Service{Name: name, Kind: kind, HTTPAddr: ports[0]}
	if kind == "bank" {
		svc.Gate = filepath.Join(s.Cfg.Dir, name+".commit-gate")
	}
	for i, m := range s.Cluster.Members {
		p, err := NewProxy(fmt.Sprintf("%s→%s", name, m.Name), m.ClientAddr, s.Cfg.Seed^(n<<8|uint64(i)))
		if err != nil {
			return nil, err
		}
		svc.Proxies = append(svc.Proxies, p)
	}
	return svc, nil
}

// storeFlag and storeValue are the bank's store argument: --store if
// Config.Stores names one, else --db and its bbolt file.
func storeFlag(cfg Config, bank string) string {
	if cfg.Stores[bank] != "" {
		return "--store"
	}
	return "--db"
}

func storeValue(cfg Config, bank string) string {
	if s := cfg.Stores[bank]; s != "" {
		return s
	}
	return filepath.Join(cfg.Dir, bank+".db")
}

func proxyAddrs(ps []*Proxy) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Addr())
	}
	return out
}

// Services lists the banks, then the coordinators.
func (s *System) Services() []*Service { return append(slices.Clone(s.Banks), s.Coords...) }

// Proxies lists every proxy.
func (s *System) Proxies() []*Proxy {
	var out []*Proxy
	for _, svc := range s.Services() {
		out = append(out, svc.Proxies...)
	}
	return out
}

// Processes lists every process: etcd members, banks, coordinators.
func (s *System) Processes() []*Process {
	var out []*Process
	if s.Cluster != nil {
		for _, m := range s.Cluster.Members {
			out = append(out, m.Process)
		}
	}
	for _, svc := range s.Services() {
		if svc.Process != nil {
			out = append(out, svc.Process)
		}
	}
	return out
}

// WaitReady waits until etcd is healthy, every service answers its
// health check and every bank is registered.
func (s *System) WaitReady(ctx context.Context) error {
	if err := s.Cluster.WaitHealthy(ctx); err != nil {
		return err
	}
	for _, svc := range s.Services() {
		if err := waitHealthy(ctx, svc); err != nil {
			return err
		}
	}
	for _, b := range s.Banks {
		for !s.Observer.Registered(b.Name) {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s is not registered in etcd: %w", b.Name, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// healthClient is shared by the health checks; its connections are closed
// with the system.
var healthClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// readClient reads the banks' state, which can be large after a long run.
var readClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// coordHealth reads a coordinator's /healthz with the API's client.
func coordHealth(ctx context.Context, svc *Service, hc *http.Client) (httpapi.Health, error) {
	cl, err := httpapi.NewClient(svc.URL(), httpapi.WithHTTPClient(hc))
	if err != nil {
		return httpapi.Health{}, err
	}
	return cl.Health(ctx)
}

// waitHealthy polls GET /healthz of any service (coordinator or bank)
// until it answers 200.
func waitHealthy(ctx context.Context, svc *Service) error {
	var last string
	for {
		resp, err := healthClient.Get(svc.URL() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if !svc.Running() {
			return fmt.Errorf("%s is not running (see %s)", svc.Name, svc.LogPath())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not healthy (last: %s; log %s): %w", svc.Name, last, svc.LogPath(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// getJSON reads a JSON document from a service.
func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := readClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// Close kills every process and closes the proxies and the observer.
func (s *System) Close() {
	for _, svc := range s.Services() {
		if svc.Process != nil {
			svc.Kill()
		}
		for _, p := range svc.Proxies {
			p.Close()
		}
	}
	if s.Observer != nil {
		s.Observer.Close()
	}
	if s.Cluster != nil {
		s.Cluster.Close()
	}
}
