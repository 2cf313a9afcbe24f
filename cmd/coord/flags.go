package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// envPrefix: every flag --some-name can also be set with the environment
// variable CONCORD_SOME_NAME. The command line wins over the environment.
// coord bench reads CONCORD_BENCH_SOME_NAME instead (benchEnvPrefix), so
// that a service's settings (CONCORD_ETCD, CONCORD_RETENTION) exported in
// the same shell do not change what a benchmark measures.
const (
	envPrefix      = "CONCORD_"
	benchEnvPrefix = "CONCORD_BENCH_"
)

// envName is the environment variable of a flag under prefix.
func envName(prefix, flagName string) string {
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// usageError is a mistake in the command line or the environment: the
// command prints it with a pointer to --help and exits with status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// flagSet is a flag.FlagSet that also reads the environment, prints help
// naming each flag's environment variable, and names in its errors where a
// bad value came from (--flag or CONCORD_FLAG).
type flagSet struct {
	*flag.FlagSet
	synopsis string // "coord tx show [flags] ID"
	about    string // what the command does, printed under the synopsis
	env      string // the prefix of its flags' environment variables
	origin   map[string]string
}

func newFlagSet(name, synopsis, about string) *flagSet {
	f := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), synopsis: synopsis, about: about, env: envPrefix, origin: make(map[string]string)}
	f.SetOutput(io.Discard) // errors are reported by run, help by printHelp
	return f
}

// parse reads args, which may mix flags and positional arguments ("show
// ID --json"), then the environment for flags the command line did not
// set; it returns the positional arguments. flag.ErrHelp means --help was
// asked for.
func (f *flagSet) parse(args []string, getenv func(string) string) ([]string, error) {
	var positional []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usagef("%s", strings.Replace(err.Error(), " -", " --", 1))
		}
		rest := f.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			// Parse stopped at "--": the rest is positional, even "-x".
			positional = append(positional, rest...)
			break
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
	f.Visit(func(fl *flag.Flag) { f.origin[fl.Name] = "--" + fl.Name })
	var envErr error
	f.VisitAll(func(fl *flag.Flag) {
		env := envName(f.env, fl.Name)
		v := getenv(env)
		if _, set := f.origin[fl.Name]; set || v == "" || envErr != nil {
			return
		}
		if err := f.Set(fl.Name, v); err != nil {
			envErr = usagef("%s: %q: %v", env, v, err)
			return
		}
		f.origin[fl.Name] = env
	})
	return positional, envErr
}

// source names where the value of flag name came from, for messages.
func (f *flagSet) source(name string) string {
	if o, ok := f.origin[name]; ok {
		return o
	}
	return "--" + name
}

// value returns the string value of flag name.
func (f *flagSet) value(name string) string { return f.Lookup(name).Value.String() }

// duration reads flag name as a positive duration.
func (f *flagSet) duration(name string) (time.Duration, error) {
	s := f.value(name)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, usagef("%s: %q is not a duration (expected e.g. %s)", f.source(name), s, f.Lookup(name).DefValue)
	}
	if d <= 0 {
		return 0, usagef("%s: %q is not positive (expected e.g. %s)", f.source(name), s, f.Lookup(name).DefValue)
	}
	return d, nil
}

// size reads flag name as a positive number of bytes.
func (f *flagSet) size(name string) (int64, error) {
	s := f.value(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, usagef("%s: %q is not a positive number of bytes (expected e.g. %s)", f.source(name), s, f.Lookup(name).DefValue)
	}
	return n, nil
}

// printHelp writes the synopsis, the description and every flag with its
// environment variable and default.
func (f *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", f.synopsis, f.about)
	first := true
	f.VisitAll(func(fl *flag.Flag) {
		if first {
			fmt.Fprintf(w, "\nFlags (each can also be set with the environment variable shown):\n")
			first = false
		}
		kind, usage := flag.UnquoteUsage(fl)
		head := "  --" + fl.Name
		if kind != "" {
			head += " " + kind
		}
		fmt.Fprintf(w, "%-40s $%s\n", head, envName(f.env, fl.Name))
		fmt.Fprintf(w, "      %s", strings.ReplaceAll(usage, "\n", "\n      "))
		if fl.DefValue != "" && fl.DefValue != "false" {
			fmt.Fprintf(w, " (default %s)", fl.DefValue)
		}
		fmt.Fprintln(w)
	})
}

// parseCommand parses a command's args and environment, printing help for
// --help. want names the positional arguments the command takes, all
// required.
func parseCommand(f *flagSet, args []string, c console, want ...string) ([]string, error) {
	pos, err := f.parse(args, c.getenv)
	if errors.Is(err, flag.ErrHelp) {
		f.printHelp(c.stdout)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) < len(want):
		return nil, usagef("missing %s", strings.Join(want[len(pos):], " "))
	case len(pos) > len(want):
		return nil, usagef("unexpected argument %q", pos[len(want)])
	}
	return pos, nil
}
