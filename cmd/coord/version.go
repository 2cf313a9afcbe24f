package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time: go build -ldflags "-X main.version=v1.2.3".
var version = "dev"

// versionString is what `coord version` prints: the version, and the
// module version and VCS revision when the build recorded them.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v += " (" + s.Value + ")"
			}
		}
	}
	return fmt.Sprintf("coord %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func runVersion(_ context.Context, c console, args []string) error {
	fs := newFlagSet("version", "coord version", "Prints the version of coord, the Go version it was built with, and the platform.")
	if _, err := parseCommand(fs, args, c); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, versionString())
	return nil
}
