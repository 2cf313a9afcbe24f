package main

import (
	"context"
	"errors"
	"fmt"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/concord-tx/concord/cmd/coord/internal/conformance"
)

func conformanceFlags() *flagSet {
	fs := newFlagSet("conformance", "coord conformance --participant-cmd COMMAND [flags]", strings.TrimSpace(`
Checks a participant implementation, in any language, against the protocol
(PROTOCOL.md): starts an embedded etcd, runs COMMAND with /bin/sh -c and the
environment CONCORD_ETCD_ENDPOINTS, CONCORD_PARTICIPANT, CONCORD_PREFIX,
CONCORD_LEASE_TTL (seconds), CONCORD_STATE_DIR and CONCORD_INSTANCE, drives
it through commit, no votes, abort without prepare, a crash after its yes
vote, duplicate and reordered delivery, compaction while it is down, a
standby taking over and the deadline, checks etcd's keys after each, and
prints a pass/fail table. The command must behave as the conformance
participant of PROTOCOL.md §11. Exit status 1 when a case fails.`))
	fs.String("participant-cmd", "", "the participant implementation: a `command` line run with /bin/sh -c (required)")
	fs.String("name", conformance.DefaultName, "participant `name` the command registers")
	fs.String("lease-ttl", conformance.DefaultLeaseTTL.String(), "lease TTL (`duration`, whole seconds) the command is told to use")
	fs.String("case-timeout", conformance.DefaultTimeout.String(), "`duration` each case may take, besides waiting out leases")
	fs.String("run", "", "run only the cases whose name matches this `regexp`")
	fs.String("dir", "", "`directory` for the embedded etcd, the command's logs and state (default: a temporary one, kept when a case fails)")
	return fs
}

func runConformance(ctx context.Context, c console, args []string) error {
	fs := conformanceFlags()
	if _, err := parseCommand(fs, args, c); err != nil {
		return err
	}
	cfg := conformance.Config{Command: fs.value("participant-cmd"), Name: fs.value("name"), Dir: fs.value("dir"), Progress: c.stderr}
	if cfg.Command == "" {
		return usagef("--participant-cmd is required (e.g. --participant-cmd './my-participant')")
	}
	var err error
	if cfg.LeaseTTL, err = fs.duration("lease-ttl"); err != nil {
		return err
	}
	if cfg.LeaseTTL < 2*time.Second || cfg.LeaseTTL%time.Second != 0 {
		return usagef("%s: %v, expected whole seconds, at least 2s", fs.source("lease-ttl"), cfg.LeaseTTL)
	}
	if cfg.CaseTimeout, err = fs.duration("case-timeout"); err != nil {
		return err
	}
	if r := fs.value("run"); r != "" {
		if cfg.Run, err = regexp.Compile(r); err != nil {
			return usagef("%s: %v", fs.source("run"), err)
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	results, err := conformance.Run(ctx, cfg)
	if len(results) > 0 {
		fmt.Fprintln(c.stdout)
		conformance.PrintTable(c.stdout, results)
	}
	if errors.Is(err, conformance.ErrFailed) {
		return err
	}
	if err != nil {
		return fmt.Errorf("could not run the suite: %w", err)
	}
	return nil
}
