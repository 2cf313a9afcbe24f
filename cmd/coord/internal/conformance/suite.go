package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/embedded"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Defaults of Config.
const (
	DefaultName     = "conformance-p"
	DefaultPrefix   = "/conformance"
	DefaultLeaseTTL = 3 * time.Second
	DefaultTimeout  = 30 * time.Second
)

// ErrFailed: at least one case failed.
var ErrFailed = errors.New("conformance: a case failed")

// Config says what to check and how.
type Config struct {
	// Command is the participant implementation, a command line run with
	// /bin/sh -c and the environment of PROTOCOL.md §11. Required.
	Command string
	// Name is the participant name it registers (default DefaultName).
	Name string
	// Prefix is the key prefix (default DefaultPrefix).
	Prefix string
	// LeaseTTL is the lease TTL the participant is told to use, whole
	// seconds (default DefaultLeaseTTL).
	LeaseTTL time.Duration
	// CaseTimeout bounds each case, on top of what its lease waits need
	// (default DefaultTimeout).
	CaseTimeout time.Duration
	// Dir holds the embedded etcd, the participant's logs and its state
	// directory. Empty: a temporary directory, removed when every case
	// passed.
	Dir string
	// Run selects the cases whose name matches (nil: all).
	Run *regexp.Regexp
	// Logger logs the suite's own steps (default: none).
	Logger *zap.Logger
	// Progress receives one line per case as it ends (nil: none).
	Progress io.Writer
}

// Result is the outcome of one case.
type Result struct {
	Case   string
	Passed bool
	Took   time.Duration
	Detail string // what was wrong; empty when it passed
}

// suite is one run: the etcd, the initiator, the peer, the instances.
type suite struct {
	cfg       Config
	log       *zap.Logger
	dir       string
	stateDir  string
	endpoints string
	cli       *clientv3.Client
	keys      protocol.Keys
	client    *coordinator.Client
	peer      *peer
	runs      int         // participant processes started, for log names
	inst      [2]*process // the instances running, 1 and 2
}

// Run runs the cases and returns their results. The error is ErrFailed
// when a case failed, or why the suite could not run at all.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Command == "" {
		return nil, errors.New("conformance: no participant command")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if err := protocol.ValidateName(cfg.Name); err != nil {
		return nil, fmt.Errorf("conformance: name: %w", err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	keys, err := protocol.NewKeys(cfg.Prefix)
	if err != nil {
		return nil, fmt.Errorf("conformance: prefix: %w", err)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < 2*time.Second || cfg.LeaseTTL%time.Second != 0 {
		return nil, fmt.Errorf("conformance: lease TTL %v, expected whole seconds, at least 2s", cfg.LeaseTTL)
	}
	if cfg.CaseTimeout == 0 {
		cfg.CaseTimeout = DefaultTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &suite{cfg: cfg, log: cfg.Logger, keys: keys, peer: newPeer()}
	s.dir = cfg.Dir
	if s.dir == "" {
		if s.dir, err = os.MkdirTemp("", "concord-conformance-"); err != nil {
			return nil, err
		}
	}
	s.stateDir = filepath.Join(s.dir, "state")
	if err := os.MkdirAll(s.stateDir, 0o755); err != nil {
		return nil, err
	}
	results, err := s.run(ctx)
	if err == nil && cfg.Dir == "" && passed(results) {
		os.RemoveAll(s.dir)
	}
	if err == nil && !passed(results) {
		err = fmt.Errorf("%w; participant logs and state are in %s", ErrFailed, s.dir)
	}
	return results, err
}

func passed(rs []Result) bool {
	for _, r := range rs {
		if !r.Passed {
			return false
		}
	}
	return true
}

func (s *suite) run(ctx context.Context) ([]Result, error) {
	clientURL, peerURL, err := embedded.LoopbackURLs()
	if err != nil {
		return nil, err
	}
	etcd, err := embedded.Start(ctx, embedded.Config{Dir: filepath.Join(s.dir, "etcd"), ClientURL: clientURL, PeerURL: peerURL, AutoCompaction: "0", Logger: s.log.Named("etcd")})
	if err != nil {
		return nil, err
	}
	defer etcd.Close()
	s.endpoints = clientURL.String()
	s.cli, err = clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	defer s.cli.Close()
	s.client, err = coordinator.NewClient(ctx, s.cli, coordinator.WithPrefix(s.cfg.Prefix), coordinator.WithLogger(s.log.Named("client")))
	if err != nil {
		return nil, err
	}
	defer s.client.Close()
	p, err := participant.New(s.cli, PeerName, s.peer.handler(), participant.WithPrefix(s.cfg.Prefix),
		participant.WithLeaseTTL(s.cfg.LeaseTTL), participant.WithLogger(s.log.Named("peer")))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	defer s.peer.releaseAll() // before the peer closes: its held Prepares return
	defer s.stopAll()
	var results []Result
	for _, c := range cases {
		if s.cfg.Run != nil && !s.cfg.Run.MatchString(c.name) {
			continue
		}
		if ctx.Err() != nil {
			return results, ctx.Err()
		}
		r := s.runCase(ctx, c)
		results = append(results, r)
		if s.cfg.Progress != nil {
			fmt.Fprintf(s.cfg.Progress, "%-30s %s\n", r.Case, verdict(r))
		}
	}
	return results, nil
}

func (s *suite) runCase(ctx context.Context, c testCase) Result {
	// Each case may wait out a lease or two (a killed instance's, a
	// standby's takeover) besides its own work.
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CaseTimeout+3*s.cfg.LeaseTTL)
	defer cancel()
	start := time.Now()
	s.log.Info("case", zap.String("case", c.name))
	err := s.up(ctx)
	if err == nil {
		err = c.run(ctx, s)
	}
	r := Result{Case: c.name, Passed: err == nil, Took: time.Since(start)}
	if err != nil {
		r.Detail = err.Error()
		if ctx.Err() != nil {
			r.Detail += " (case timed out)"
		}
	}
	return r
}

func verdict(r Result) string {
	if r.Passed {
		return "PASS"
	}
	return "FAIL"
}

// PrintTable writes the results as a table: case, result, time, detail.
func PrintTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tRESULT\tTIME\tDETAIL")
	n := 0
	for _, r := range results {
		if r.Passed {
			n++
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1fs\t%s\n", r.Case, verdict(r), r.Took.Seconds(), r.Detail)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d cases passed\n", n, len(results))
}
