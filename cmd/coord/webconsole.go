package main

import (
	"fmt"
	"net/http"

	webconsole "github.com/concord-tx/concord/console"
	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// consoleConfig is what `coord serve` was told about the web console.
type consoleConfig struct {
	enabled  bool
	traceURL string
}

// consoleFlags adds the console's flags to serve's.
func consoleFlags(fs *flagSet) {
	fs.Bool("console", true, "serve the operator's web console at / (--console=false turns it off; the API keeps its paths)")
	fs.String("console-trace-url", "", "`URL` template linking a transaction's trace id from the console, e.g. https://jaeger.example/trace/"+webconsole.TraceIDPlaceholder)
}

// parseConsole validates the console's flags.
func parseConsole(fs *flagSet) (consoleConfig, error) {
	cc := consoleConfig{enabled: fs.value("console") == "true", traceURL: fs.value("console-trace-url")}
	if err := webconsole.ValidateTraceURL(cc.traceURL); err != nil {
		return cc, usagef("%s: %v", fs.source("console-trace-url"), err)
	}
	return cc, nil
}

// withConsole mounts the console beside srv's handler (the API) when it
// is enabled. The returned close stops its watch and ends its pages'
// streams; it also runs when srv starts shutting down, so that open pages
// do not hold the shutdown up.
func withConsole(srv *http.Server, cfg serveConfig, cli *clientv3.Client, client *coordinator.Client, gate *httpapi.Gate, leader func() bool, log *zap.Logger) (close func(), err error) {
	if !cfg.console.enabled {
		return func() {}, nil
	}
	opts := []webconsole.Option{
		webconsole.WithPrefix(cfg.prefix),
		webconsole.WithLogger(log.Named("console")),
		webconsole.WithLeader(leader),
		webconsole.WithTraceURL(cfg.console.traceURL),
		webconsole.WithRequestTimeout(2 * cfg.requestTimeout),
	}
	if cfg.credentials.Len() > 0 {
		opts = append(opts, webconsole.WithAuthenticator(consoleAuthenticator(gate)))
	}
	con, err := webconsole.New(cli, client, opts...)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	srv.Handler = con.Mount(srv.Handler)
	close = func() { con.Close() }
	srv.RegisterOnShutdown(close)
	return close, nil
}

// consoleAuthenticator lets the API's credentials sign in to the console,
// each with its role and the roles below it (admin may begin and read).
// Without credentials configured the console is open, as the API is, and
// serve listens on loopback only.
func consoleAuthenticator(gate *httpapi.Gate) webconsole.Authenticator {
	return webconsole.AuthenticatorFunc(func(token string) (webconsole.Identity, bool) {
		name, role, ok := gate.Authenticate(token)
		if !ok {
			return webconsole.Identity{}, false
		}
		id := webconsole.Identity{Name: name}
		for r := httpapi.RoleRead; r <= role; r++ {
			id.Roles = append(id.Roles, webconsole.Role(r.String()))
		}
		return id, true
	})
}
