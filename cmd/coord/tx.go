package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/protocol"
)

// txCommands are the subcommands of `coord tx`.
var txCommands = map[string]command{
	"list":  {"list transactions in id order, optionally of one state", runTxList},
	"show":  {"show one transaction with the vote and acknowledgement of each participant", runTxShow},
	"abort": {"abort an undecided transaction", runTxAbort},
}

// txRequestTimeout bounds each call to the coordinator.
const txRequestTimeout = 30 * time.Second

func runTx(ctx context.Context, c console, args []string) error {
	names := slices.Sorted(maps.Keys(txCommands))
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		w := c.stdout
		if len(args) == 0 {
			w = c.stderr
		}
		fmt.Fprintf(w, "Usage: coord tx <command> [flags] [arguments]\n\nTalks to a running coordinator's HTTP API.\n\nCommands:\n")
		for _, n := range names {
			fmt.Fprintf(w, "  %-8s %s\n", n, txCommands[n].summary)
		}
		fmt.Fprintf(w, "\nRun 'coord tx <command> --help' for its flags.\n")
		if len(args) == 0 {
			return usagef("missing command (expected one of %s)", strings.Join(names, ", "))
		}
		return nil
	}
	cmd, ok := txCommands[args[0]]
	if !ok {
		return usagef("unknown command %q (expected one of %s)", args[0], strings.Join(names, ", "))
	}
	if err := cmd.run(ctx, c, args[1:]); err != nil {
		return &subcommandError{prog: "coord tx " + args[0], err: err}
	}
	return nil
}

// txFlags are the flags every tx subcommand has.
type txFlags struct {
	*flagSet
	addr   *string
	json   *bool
	token  *string
	caFile *string
}

func newTxFlags(name, synopsis, about string) txFlags {
	fs := newFlagSet(name, synopsis, about)
	return txFlags{
		flagSet: fs,
		addr:    fs.String("addr", "http://127.0.0.1:7070", "`URL` of a coordinator's HTTP API (https:// when it serves TLS)"),
		json:    fs.Bool("json", false, "print the API's JSON instead of a table, for scripts"),
		token:   fs.String("token", "", "bearer `token` of a credential of the coordinator (prefer the environment variable: a flag shows in ps)"),
		caFile:  fs.String("ca-file", "", "`file` with the PEM certificate of the authority that signed the coordinator's (default: the system's)"),
	}
}

func (f txFlags) client() (*httpapi.Client, error) {
	opts := []httpapi.ClientOption{httpapi.WithTimeout(txRequestTimeout), httpapi.WithToken(*f.token)}
	if *f.caFile != "" {
		pool, err := httpapi.LoadCAFile(*f.caFile)
		if err != nil {
			return nil, usagef("%s: %v", f.source("ca-file"), err)
		}
		opts = append(opts, httpapi.WithRootCAs(pool))
	}
	cl, err := httpapi.NewClient(*f.addr, opts...)
	if err != nil {
		return nil, usagef("%s: %v", f.source("addr"), err)
	}
	return cl, nil
}

// stateChoices names what --state takes: each state, then unfinished.
func stateChoices() string {
	names := make([]string, 0, len(protocol.States()))
	for _, s := range protocol.States() {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ") + " or " + httpapi.Unfinished
}

func runTxList(ctx context.Context, c console, args []string) error {
	f := newTxFlags("list", "coord tx list [flags]", "Lists transactions in id order, following pages until --limit are shown.")
	state := f.String("state", "", "only transactions in this `state`: "+stateChoices()+" (unfinished: any not yet terminal)")
	limit := f.Int("limit", 100, "show at most this many `transactions` (0: all)")
	after := f.String("after", "", "start after this transaction `id` (the \"next\" of an earlier listing)")
	if _, err := parseCommand(f.flagSet, args, c); err != nil {
		return err
	}
	if *limit < 0 {
		return usagef("%s: %d is negative (expected a number of transactions, or 0 for all)", f.source("limit"), *limit)
	}
	var st protocol.State
	unfinished := *state == httpapi.Unfinished
	if *state != "" && !unfinished {
		var err error
		if st, err = protocol.ParseState(*state); err != nil {
			return usagef("%s: %q is not a state (expected %s)", f.source("state"), *state, stateChoices())
		}
	}
	cl, err := f.client()
	if err != nil {
		return err
	}
	var all httpapi.List
	next := *after
	for {
		page := httpapi.MaxPageSize
		if *limit > 0 {
			page = min(page, *limit-len(all.Transactions))
		}
		l, err := cl.List(ctx, httpapi.ListOptions{State: st, Unfinished: unfinished, Limit: page, After: next})
		if err != nil {
			return err
		}
		all.Transactions = append(all.Transactions, l.Transactions...)
		all.Next, next = l.Next, l.Next
		if next == "" || (*limit > 0 && len(all.Transactions) >= *limit) {
			break
		}
	}
	if *f.json {
		return printJSON(c.stdout, all)
	}
	printList(c.stdout, all.Transactions)
	if all.Next != "" {
		// The same listing, from where this one stopped.
		more := []string{"coord tx list"}
		for _, name := range []string{"addr", "state", "limit"} {
			if o := f.origin[name]; strings.HasPrefix(o, "--") {
				more = append(more, fmt.Sprintf("--%s %s", name, f.value(name)))
			}
		}
		fmt.Fprintf(c.stderr, "more: %s --after %s\n", strings.Join(more, " "), all.Next)
	}
	return nil
}

func runTxShow(ctx context.Context, c console, args []string) error {
	f := newTxFlags("show", "coord tx show [flags] ID", "Shows transaction ID: its state, times, abort reason, and each participant's vote and acknowledgement.")
	pos, err := parseCommand(f.flagSet, args, c, "ID")
	if err != nil {
		return err
	}
	cl, err := f.client()
	if err != nil {
		return err
	}
	tx, err := cl.Get(ctx, pos[0])
	if err != nil {
		return err
	}
	if *f.json {
		return printJSON(c.stdout, tx)
	}
	printTransaction(c.stdout, tx)
	return nil
}

func runTxAbort(ctx context.Context, c console, args []string) error {
	f := newTxFlags("abort", "coord tx abort [flags] ID", "Aborts transaction ID if it is not decided yet. An aborted one is left as it is;\na committed one cannot be aborted (exit status 1, HTTP 409).")
	reason := f.String("reason", "", "why, recorded in the transaction (default \"aborted by operator\")")
	pos, err := parseCommand(f.flagSet, args, c, "ID")
	if err != nil {
		return err
	}
	cl, err := f.client()
	if err != nil {
		return err
	}
	out, err := cl.Abort(ctx, pos[0], *reason)
	if err != nil {
		return err
	}
	if *f.json {
		return printJSON(c.stdout, out)
	}
	fmt.Fprintf(c.stdout, "%s %s", oneLine(out.ID), out.State)
	if out.Reason != "" {
		fmt.Fprintf(c.stdout, ": %s", oneLine(out.Reason))
	}
	fmt.Fprintln(c.stdout)
	return nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// timeLayout shows times in UTC to the millisecond.
const timeLayout = "2006-01-02 15:04:05.000Z07:00"

func printList(w io.Writer, txs []httpapi.Transaction) {
	if len(txs) == 0 {
		fmt.Fprintln(w, "no transactions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tPARTICIPANTS\tCREATED\tREASON")
	for _, tx := range txs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", oneLine(tx.ID), tx.State, oneLine(strings.Join(tx.Participants, ",")), tx.Created.UTC().Format(timeLayout), oneLine(tx.Reason))
	}
	tw.Flush()
}

func printTransaction(w io.Writer, tx httpapi.Transaction) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(timeLayout)
	}
	row("ID", oneLine(tx.ID))
	row("State", tx.State.String())
	row("Created", at(tx.Created))
	row("Deadline", at(tx.Deadline))
	row("Decided", at(tx.Decided))
	row("Finished", at(tx.Finished))
	row("Cause", oneLine(string(tx.Cause)))
	row("Reason", oneLine(tx.Reason))
	row("Revision", strconv.FormatInt(tx.Revision, 10))
	row("Trace", tx.TraceID)
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTICIPANT\tVOTE\tACKED")
	for _, b := range tx.Branches {
		vote := b.Vote
		if b.VoteReason != "" {
			vote += " (" + oneLine(b.VoteReason) + ")"
		}
		acked := "no"
		if b.Acked {
			acked = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", oneLine(b.Participant), vote, acked)
	}
	tw.Flush()
	if len(tx.Failures) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FAILING\tHANDLER\tSINCE\tATTEMPTS\tLAST ERROR")
	for _, f := range tx.Failures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", oneLine(f.Participant), oneLine(f.Op), at(f.Since), f.Attempts, oneLine(f.LastError))
	}
	tw.Flush()
}

// oneLine keeps a table row on one line, and shows any other character a
// terminal would act on (escape sequences, bidi overrides) escaped as Go
// would quote it ("\x1b"), so that a reason cannot rewrite the screen.
func oneLine(s string) string {
	var b strings.Builder
	for _, r := range strings.Join(strings.Fields(s), " ") {
		if r == utf8.RuneError || !strconv.IsPrint(r) && r != ' ' {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
