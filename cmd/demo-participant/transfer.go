package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/transfer"
	"github.com/concord-tx/concord/cmd/internal/otelsetup"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

type transferConfig struct {
	coord          string
	token, caFile  string
	from, to       string
	amount         string
	id             string
	timeout        time.Duration
	requestTimeout time.Duration
	// load
	load        int
	concurrency int
	accounts    string
	banks       string
	maxAmount   int64
	seed        uint64
	settle      time.Duration
}

// runTransfer runs one transfer, or with --load many random ones. One
// transfer exits 0 on committed, 1 on aborted, 2 on error. A load exits 0
// when every transfer got a decision and the banks conserved money, 1 when
// the sum of balances changed or holds were left, 2 on errors.
func runTransfer(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var c transferConfig
	fs := flag.NewFlagSet("demo-participant transfer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.coord, "coord", "http://127.0.0.1:7070", "coordinator HTTP address")
	fs.StringVar(&c.token, "token", "", "bearer token of a credential of the coordinator with the begin role (default $CONCORD_TOKEN)")
	fs.StringVar(&c.caFile, "ca-file", "", "PEM certificate of the authority that signed an https:// coordinator's certificate (default $CONCORD_CA_FILE, else the system's)")
	fs.StringVar(&c.from, "from", "", "account to debit, bank:account (e.g. bank-a:alice)")
	fs.StringVar(&c.to, "to", "", "account to credit, bank:account (e.g. bank-b:bob)")
	fs.StringVar(&c.amount, "amount", "", "amount to move, a positive integer in minor units")
	fs.StringVar(&c.id, "id", "", "transaction id (default: a new UUID); repeating an id within the coordinator's --retention\nrepeats nothing, and after it begins a new transaction")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "how long the banks have to prepare before the transaction aborts")
	fs.DurationVar(&c.requestTimeout, "request-timeout", 30*time.Second, "how long to wait for each decision, resending if the coordinator is unreachable")
	fs.IntVar(&c.load, "load", 0, "run this many random transfers among --accounts instead of one")
	fs.IntVar(&c.concurrency, "concurrency", 8, "with --load: transfers in flight at once")
	fs.StringVar(&c.accounts, "accounts", "", "with --load: accounts to move money among, e.g. bank-a:alice,bank-a:bob,bank-b:carol")
	fs.StringVar(&c.banks, "banks", "", "with --load: each bank's HTTP address, e.g. bank-a=http://127.0.0.1:8081,bank-b=http://127.0.0.1:8082")
	fs.Int64Var(&c.maxAmount, "max-amount", 20, "with --load: amounts are random in [1, max-amount]")
	fs.Uint64Var(&c.seed, "seed", 0, "with --load: random seed (default: from the clock)")
	fs.DurationVar(&c.settle, "settle", 30*time.Second, "with --load: how long to wait for the banks to apply every decision before the final read")
	documentEnv(fs, transferEnvPrefix)
	if err := parseFlags(fs, transferEnvPrefix, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	tlog, _ := newLogger("warn", stderr)
	tr, err := otelsetup.Setup(ctx, os.Getenv, "demo-participant-transfer", tlog.Named("otel"))
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	defer tr.Flush()
	hc := &http.Client{Timeout: c.requestTimeout}
	coord, err := c.coordinator(hc)
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	if c.load > 0 {
		return runLoad(ctx, c, coord, hc, stdout, stderr)
	}
	t, err := c.single()
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	req, err := t.Request(c.id, c.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	rctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	rctx, end := traceTransfer(rctx, tr.Provider, req.ID)
	out, err := coord.Do(rctx, req)
	end(out, err)
	if err != nil {
		fmt.Fprintf(stderr, "demo-participant transfer: error: %v\n", err)
		return exitError
	}
	if out.State == protocol.StateCommitted {
		fmt.Fprintf(stdout, "committed tx=%s from=%s to=%s amount=%d\n", out.ID, t.From, t.To, t.Amount)
		return exitOK
	}
	fmt.Fprintf(stdout, "aborted tx=%s from=%s to=%s amount=%d reason=%q\n", out.ID, t.From, t.To, t.Amount, out.Reason)
	return exitAborted
}

// coordinator is the client of the coordinator's API the flags describe,
// sending with hc (the bank reads share hc, so it keeps the default
// roots: a --ca-file is for the coordinator only).
func (c transferConfig) coordinator(hc *http.Client) (*httpapi.Client, error) {
	token, caFile := c.token, c.caFile
	if token == "" {
		token = os.Getenv("CONCORD_TOKEN")
	}
	if caFile == "" {
		caFile = os.Getenv("CONCORD_CA_FILE")
	}
	opts := []httpapi.ClientOption{httpapi.WithToken(token)}
	if caFile != "" {
		pool, err := httpapi.LoadCAFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca-file: %w", err)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
		opts = append(opts, httpapi.WithHTTPClient(&http.Client{Transport: tr, Timeout: hc.Timeout}))
	} else {
		opts = append(opts, httpapi.WithHTTPClient(hc))
	}
	cl, err := httpapi.NewClient(c.coord, opts...)
	if err != nil {
		return nil, fmt.Errorf("--coord: %w", err)
	}
	return cl, nil
}

// single checks the arguments of one transfer.
func (c transferConfig) single() (transfer.Transfer, error) {
	switch {
	case c.accounts != "" || c.banks != "":
		return transfer.Transfer{}, errors.New("--accounts and --banks go with --load N; one transfer takes --from, --to and --amount")
	case c.from == "":
		return transfer.Transfer{}, errors.New("--from is required: the account to debit, as bank:account (e.g. bank-a:alice)")
	case c.to == "":
		return transfer.Transfer{}, errors.New("--to is required: the account to credit, as bank:account (e.g. bank-b:bob)")
	case c.amount == "":
		return transfer.Transfer{}, errors.New("--amount is required: a positive integer in minor units")
	}
	from, err := transfer.ParseEndpoint(c.from)
	if err != nil {
		return transfer.Transfer{}, fmt.Errorf("--from: %w", err)
	}
	to, err := transfer.ParseEndpoint(c.to)
	if err != nil {
		return transfer.Transfer{}, fmt.Errorf("--to: %w", err)
	}
	amount, err := transfer.ParseAmount(c.amount)
	if err != nil {
		return transfer.Transfer{}, fmt.Errorf("--amount: %w", err)
	}
	t := transfer.Transfer{From: from, To: to, Amount: amount}
	return t, t.Validate()
}

func runLoad(ctx context.Context, c transferConfig, coord *httpapi.Client, hc *http.Client, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "demo-participant transfer: %v\n", err)
		return exitError
	}
	if c.from != "" || c.to != "" || c.amount != "" || c.id != "" {
		return fail(errors.New("--load runs random transfers among --accounts; --from, --to, --amount and --id are for one transfer"))
	}
	accounts, err := transfer.ParseEndpoints(c.accounts)
	if err != nil {
		return fail(fmt.Errorf("--accounts: %w", err))
	}
	banks, err := transfer.ParseBanks(c.banks, hc)
	if err != nil {
		return fail(fmt.Errorf("--banks: %w", err))
	}
	seed := c.seed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	l := transfer.Load{
		N:             c.load,
		Concurrency:   c.concurrency,
		Accounts:      accounts,
		MaxAmount:     c.maxAmount,
		Timeout:       c.timeout,
		Seed:          seed,
		Progress:      stderr,
		ProgressEvery: time.Second,
		Settle:        c.settle,

		RequestTimeout: c.requestTimeout,
	}
	if err := l.Validate(banks); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stderr, "running %d transfers, %d at a time, among %d accounts (seed %d)\n", l.N, l.Concurrency, len(accounts), seed)
	rep, err := transfer.RunLoad(ctx, coord, banks, l)
	if err != nil {
		return fail(err)
	}
	if err := rep.Write(stdout, accounts); err != nil {
		return fail(err)
	}
	switch {
	case len(rep.Errors) > 0 || ctx.Err() != nil:
		return exitError
	case !rep.Conserved() || !rep.Settled:
		return exitAborted
	}
	return exitOK
}
