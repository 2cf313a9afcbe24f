package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// console is what a command reads and writes besides its arguments.
type console struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// command is one subcommand of coord.
type command struct {
	summary string
	run     func(ctx context.Context, c console, args []string) error
}

// commands are coord's subcommands. Adding one is one line here.
var commands = map[string]command{
	"bench":   {"measure throughput, latency and etcd requests per transaction", runBench},
	"serve":   {"run a coordinator replica and its HTTP API", runServe},
	"tx":      {"list, show and abort transactions of a running coordinator", runTx},
	"version": {"print the version of coord", runVersion},

	"conformance": {"check a participant in any language against the protocol (PROTOCOL.md)", runConformance},
	"gateway":     {"let an HTTP service in any language take part as a participant", runGateway},
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], console{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// run runs the command line args and returns the exit status: 0 done, 1
// failed, 2 the command line or environment is wrong.
func run(ctx context.Context, args []string, c console) int {
	if len(args) == 0 {
		printUsage(c.stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && name == "help" {
			return run(ctx, []string{args[1], "--help"}, c)
		}
		printUsage(c.stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(c.stderr, "coord: unknown command %q (expected one of %s)\nRun 'coord --help' for usage.\n", name, strings.Join(commandNames(), ", "))
		return 2
	}
	return exitStatus(c.stderr, "coord "+name, cmd.run(ctx, c, args[1:]))
}

// subcommandError is the error of a nested command ("coord tx show"),
// which its messages name instead of the top-level one.
type subcommandError struct {
	prog string
	err  error
}

func (e *subcommandError) Error() string { return e.prog + ": " + e.err.Error() }
func (e *subcommandError) Unwrap() error { return e.err }

// exitStatus reports err, if any, and returns the exit status for it.
func exitStatus(stderr io.Writer, prog string, err error) int {
	var sub *subcommandError
	if errors.As(err, &sub) {
		prog, err = sub.prog, sub.err
	}
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", prog, err, prog)
		return 2
	default:
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
}

func commandNames() []string { return slices.Sorted(maps.Keys(commands)) }

func printUsage(w io.Writer) {
	fmt.Fprintf(w, "coord is the Concord two-phase-commit coordinator.\n\nUsage: coord <command> [flags] [arguments]\n\nCommands:\n")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'coord <command> --help' for the flags of a command. Every flag --some-flag\ncan also be set with the environment variable %sSOME_FLAG (%sSOME_FLAG for bench).\n", envPrefix, benchEnvPrefix)
}
