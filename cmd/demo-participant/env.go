package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// The environment variable of a flag is its command's prefix and its name:
// serve's --lease-ttl is also DEMO_LEASE_TTL, transfer's --accounts is
// DEMO_TRANSFER_ACCOUNTS. The two commands have flags of the same name
// and different meanings (--accounts), so they read different variables.
const (
	serveEnvPrefix    = "DEMO_"
	transferEnvPrefix = "DEMO_TRANSFER_"
)

func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// documentEnv adds each flag's environment variable to its usage text.
// Call it after defining the flags.
func documentEnv(fs *flag.FlagSet, prefix string) {
	fs.VisitAll(func(f *flag.Flag) {
		f.Usage += " (env " + envName(prefix, f.Name) + ")"
	})
}

// parseFlags parses args, then sets every flag not given on the command
// line from its environment variable under prefix, if that is set.
func parseFlags(fs *flag.FlagSet, prefix string, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(envName(prefix, f.Name)); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("%s=%q: %w", envName(prefix, f.Name), v, serr)
			}
		}
	})
	return err
}
