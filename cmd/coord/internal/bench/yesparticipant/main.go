// Command yesparticipant is a participant process whose handlers do
// nothing and always succeed. `coord bench --deployed --participant yes`
// runs it, to measure Concord's own cost in the deployed shape without a
// store's (the demo bank's bbolt file syncs every prepare and commit).
// It serves GET /healthz (200 once the participant is active) and stops on
// SIGINT or SIGTERM. It is for the benchmark only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	name := flag.String("name", "", "participant `name` (required)")
	etcd := flag.String("etcd", "127.0.0.1:2379", "comma-separated etcd `endpoints`")
	listen := flag.String("listen", "127.0.0.1:0", "`address` of GET /healthz")
	workers := flag.Int("workers", 32, "transactions handled at once")
	flag.Parse()
	if err := run(*name, *etcd, *listen, *workers); err != nil {
		fmt.Fprintf(os.Stderr, "yesparticipant: %v\n", err)
		os.Exit(1)
	}
}

func run(name, etcd, listen string, workers int) error {
	if name == "" {
		return errors.New("--name is required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: strings.Split(etcd, ","), DialTimeout: 5 * time.Second,
		DialOptions: flowcontrol.DialOptions(), Logger: zap.NewNop(),
	})
	if err != nil {
		ln.Close()
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	p, err := participant.New(cli, name, participant.HandlerFuncs{}, participant.WithWorkers(workers))
	if err != nil {
		ln.Close()
		return err
	}
	defer p.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if !p.IsActive() {
			http.Error(w, "not active", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer srv.Close()
	select {
	case <-ctx.Done():
		return nil
	case <-p.Done():
		return errors.New("participant stopped")
	case err := <-served:
		return err
	}
}
