package transfer

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// Write prints the report as a table: outcomes, throughput, and every
// listed account's money before and after, with the totals of all accounts
// of the banks read.
func (r Report) Write(w io.Writer, accounts []Endpoint) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	total := r.Decided()
	for _, n := range r.Errors {
		total += n
	}
	fmt.Fprintf(tw, "transfers\t%d\n", total)
	if r.Interrupted {
		fmt.Fprintf(tw, "interrupted\tthe run was stopped before its end; the banks were read as they were\n")
	}
	fmt.Fprintf(tw, "committed\t%d\n", r.Committed)
	for _, k := range sortedKeys(r.Aborted) {
		fmt.Fprintf(tw, "aborted\t%d\t%s\n", r.Aborted[k], k)
	}
	for _, k := range sortedKeys(r.Errors) {
		fmt.Fprintf(tw, "error\t%d\t%s\n", r.Errors[k], k)
	}
	rate := 0.0
	if r.Elapsed > 0 {
		rate = float64(r.Decided()) / r.Elapsed.Seconds()
	}
	fmt.Fprintf(tw, "elapsed\t%v\n", r.Elapsed.Round(1e6))
	fmt.Fprintf(tw, "tx/s\t%.1f\n", rate)
	fmt.Fprintln(tw)
	fmt.Fprintf(tw, "account\tbefore\tafter\theld after\n")
	for _, e := range accounts {
		b, _ := r.Before.Account(e)
		a, _ := r.After.Account(e)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", e, b.Balance, a.Balance, a.Held)
	}
	bb, _ := r.Before.Sum()
	ab, ah := r.After.Sum()
	fmt.Fprintf(tw, "total (all accounts)\t%d\t%d\t%d\n", bb, ab, ah)
	fmt.Fprintln(tw)
	switch {
	case !r.Conserved():
		fmt.Fprintf(tw, "NOT CONSERVED: the sum of balances changed by %d\n", ab-bb)
	case !r.Settled:
		fmt.Fprintf(tw, "NOT SETTLED: decisions still being applied after the settle wait (%d held)\n", ah)
	default:
		fmt.Fprintf(tw, "conserved: sum of balances unchanged, no holds left\n")
	}
	return tw.Flush()
}

func sortedKeys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if m[out[i]] != m[out[j]] {
			return m[out[i]] > m[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}
