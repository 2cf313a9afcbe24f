// Command demo-participant is Concord's demo: a bank service that takes
// part in transactions, and a tool that transfers money between banks
// through the coordinator.
//
//	demo-participant serve --name bank-a --etcd 127.0.0.1:2379 --db bank-a.db \
//	    --listen 127.0.0.1:8081 --accounts alice=100,bob=50
//	demo-participant transfer --coord http://127.0.0.1:7070 \
//	    --from bank-a:alice --to bank-b:bob --amount 10
//	demo-participant transfer --coord http://127.0.0.1:7070 --load 500 --concurrency 16 \
//	    --accounts bank-a:alice,bank-a:bob,bank-b:carol \
//	    --banks bank-a=http://127.0.0.1:8081,bank-b=http://127.0.0.1:8082
//
// Every flag can also be set from the environment: serve's --lease-ttl
// from DEMO_LEASE_TTL, transfer's --coord from DEMO_TRANSFER_COORD, and so
// on; a flag on the command line wins.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes.
const (
	exitOK      = 0 // served until a signal; transfer committed; load conserved money
	exitAborted = 1 // transfer aborted; load left money changed or decisions unapplied
	exitFailed  = 1 // serve stopped on an error
	exitError   = 2 // bad arguments or environment, or no decision could be obtained
)

const usage = `usage:
  demo-participant serve    [flags]   run a bank (a Concord participant)
  demo-participant transfer [flags]   move money between bank accounts

Run "demo-participant <command> -h" for the flags of each.

Both export their spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or
OTEL_TRACES_EXPORTER=otlp) is set; the other standard OTEL_* variables apply.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:], stderr)
	case "transfer":
		return runTransfer(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "demo-participant: unknown command %q\n%s", args[0], usage)
		return exitError
	}
}
