// Command goparticipant is the conformance participant (PROTOCOL.md §11)
// written with the Go SDK: what `coord conformance` runs in CI to show that
// the SDK keeps the protocol. It reads its settings from the environment
// the suite gives it (CONCORD_ETCD_ENDPOINTS, CONCORD_PARTICIPANT,
// CONCORD_PREFIX, CONCORD_LEASE_TTL), answers Prepare as the branch payload
// asks ({"vote": "no", "reason": "…"} refuses, "delay_ms" waits first),
// and on SIGINT or SIGTERM closes the participant, which revokes its lease
// (unless GOPARTICIPANT_EXIT_WITHOUT_REVOKE=1, a deliberate bug the suite's
// own tests use to show that it catches one). GOPARTICIPANT_DO_NOTHING=1
// is another: it registers, and its handlers wait until they are
// cancelled, so it never votes or acknowledges.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "goparticipant: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	endpoints := os.Getenv("CONCORD_ETCD_ENDPOINTS")
	name := os.Getenv("CONCORD_PARTICIPANT")
	if endpoints == "" || name == "" {
		return errors.New("CONCORD_ETCD_ENDPOINTS and CONCORD_PARTICIPANT must be set (see PROTOCOL.md §11)")
	}
	opts := []participant.Option{}
	if p := os.Getenv("CONCORD_PREFIX"); p != "" {
		opts = append(opts, participant.WithPrefix(p))
	}
	if s := os.Getenv("CONCORD_LEASE_TTL"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return fmt.Errorf("CONCORD_LEASE_TTL=%q, expected whole seconds, at least 1", s)
		}
		opts = append(opts, participant.WithLeaseTTL(time.Duration(n)*time.Second))
	}
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	defer log.Sync()
	opts = append(opts, participant.WithLogger(log))
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(endpoints, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	var h participant.Handler = participant.HandlerFuncs{PrepareFunc: prepare}
	if os.Getenv("GOPARTICIPANT_DO_NOTHING") == "1" {
		h = participant.HandlerFuncs{PrepareFunc: wait, CommitFunc: wait, AbortFunc: wait}
	}
	p, err := participant.New(cli, name, h, opts...)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-p.Done():
	}
	if os.Getenv("GOPARTICIPANT_EXIT_WITHOUT_REVOKE") == "1" {
		// A broken participant, for the suite's own test: it must notice.
		os.Exit(0)
	}
	return p.Close()
}

// prepare answers as the payload asks (PROTOCOL.md §11).
func prepare(ctx context.Context, tx participant.Tx) error {
	var ask struct {
		Vote    string `json:"vote"`
		Reason  string `json:"reason"`
		DelayMS int    `json:"delay_ms"`
	}
	if len(tx.Payload) > 0 {
		if err := json.Unmarshal(tx.Payload, &ask); err != nil {
			return fmt.Errorf("payload is not a conformance payload: %v", err)
		}
	}
	if ask.DelayMS > 0 {
		t := time.NewTimer(time.Duration(ask.DelayMS) * time.Millisecond)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	if ask.Vote == "no" {
		return errors.New(ask.Reason)
	}
	return nil
}

// wait is a handler that does nothing until it is cancelled.
func wait(ctx context.Context, _ participant.Tx) error {
	<-ctx.Done()
	return ctx.Err()
}
