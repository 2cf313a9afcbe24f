package chaos

import (
	"fmt"
	"strings"
	"time"
)

// Table renders summaries as a Markdown table: one row per run.
func Table(rows []Summary) string {
	var b strings.Builder
	b.WriteString("| scenario | seed | attempted | committed | aborted | unknown | faults injected | effects seen | violations (" + strings.Join(Checks, ", ") + ") | slowest to terminal after heal | longest begin to terminal | tx/s before / during / after | wall |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | --- | --- | --- | ---: | ---: | --- | ---: |\n")
	for _, s := range rows {
		var faults []string
		for _, k := range sortedKeys(s.Faults) {
			faults = append(faults, fmt.Sprintf("%s=%d", k, s.Faults[k]))
		}
		effects := "-"
		if len(s.Effects) > 0 {
			var es []string
			for _, k := range sortedKeys(s.Effects) {
				es = append(es, fmt.Sprintf("%s=%d", k, s.Effects[k]))
			}
			effects = strings.Join(es, " ")
		}
		var viol []string
		for _, c := range Checks {
			viol = append(viol, fmt.Sprint(s.Violations[c]))
		}
		slowest := "-"
		if s.SlowestID != "" {
			slowest = fmt.Sprintf("%v (%s)", s.Slowest.Round(time.Millisecond), s.SlowestID)
		}
		longest := "-"
		if s.LongestID != "" {
			longest = fmt.Sprintf("%v (%s)", s.Longest.Round(time.Millisecond), s.LongestID)
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %s | %s | %s | %s | %s | %.1f / %.1f / %.1f | %v |\n",
			s.Scenario, s.Seed, s.Attempted, s.Committed, s.Aborted, s.Unknown,
			strings.Join(faults, " "), effects, strings.Join(viol, " / "), slowest, longest,
			s.Rate[PhaseBefore], s.Rate[PhaseDuring], s.Rate[PhaseAfter], s.Wall.Round(time.Second))
	}
	return b.String()
}
