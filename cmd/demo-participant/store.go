package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
	"github.com/concord-tx/concord/participant"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"go.uber.org/zap"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// storeKind is where a bank keeps its accounts.
type storeKind uint8

const (
	storeBbolt storeKind = iota + 1
	storePostgres
	storeSQLite
)

// storeSpec is a parsed --store.
type storeSpec struct {
	kind storeKind
	path string // bbolt file or SQLite file
	url  string // PostgreSQL
}

// String names the store for logs and errors, without a password.
func (s storeSpec) String() string {
	switch s.kind {
	case storePostgres:
		if u, err := url.Parse(s.url); err == nil {
			return u.Redacted()
		}
		return "postgres://…"
	case storeSQLite:
		return "sqlite:" + s.path
	}
	return "bbolt:" + s.path
}

const storeUsage = "expected postgres://user@host:5432/database, sqlite:PATH or bbolt:PATH"

// parseStore reads --store; an empty one is the bbolt file db.
func parseStore(store, db string) (storeSpec, error) {
	switch {
	case store == "":
		return storeSpec{kind: storeBbolt, path: db}, nil
	case strings.HasPrefix(store, "postgres://"), strings.HasPrefix(store, "postgresql://"):
		u, err := url.Parse(store)
		if err != nil {
			return storeSpec{}, fmt.Errorf("--store: %v (%s)", err, storeUsage)
		}
		if u.Host == "" || strings.Trim(u.Path, "/") == "" {
			return storeSpec{}, fmt.Errorf("--store %s: a host and a database are needed (%s)", u.Redacted(), storeUsage)
		}
		return storeSpec{kind: storePostgres, url: store}, nil
	case strings.HasPrefix(store, "sqlite:"):
		path := strings.TrimPrefix(store, "sqlite:")
		if path == "" || strings.ContainsAny(path, "?#") {
			return storeSpec{}, fmt.Errorf("--store %q: a file path without ? or # is needed (%s)", store, storeUsage)
		}
		return storeSpec{kind: storeSQLite, path: path}, nil
	case strings.HasPrefix(store, "bbolt:"):
		path := strings.TrimPrefix(store, "bbolt:")
		if path == "" {
			return storeSpec{}, fmt.Errorf("--store %q: a file path is needed (%s)", store, storeUsage)
		}
		return storeSpec{kind: storeBbolt, path: path}, nil
	}
	return storeSpec{}, fmt.Errorf("--store %q: unknown kind of store (%s)", store, storeUsage)
}

// openedStore is a bank's store, open: its handler and what the HTTP API
// reads.
type openedStore struct {
	handler participant.Handler
	ledger  bank.Ledger
	created bool
	close   func() error
}

// lockTimeout is how long a bank waits for a bbolt file another process
// holds before it gives up and names that process.
const lockTimeout = 3 * time.Second

func openStore(ctx context.Context, spec storeSpec, name string, seed map[string]int64, log *zap.Logger) (*openedStore, error) {
	if spec.kind == storeBbolt {
		s, created, err := bank.Open(spec.path, seed, lockTimeout)
		if err != nil {
			return nil, err
		}
		return &openedStore{handler: bank.NewHandler(s, bank.WithLogger(log)), ledger: s, created: created, close: s.Close}, nil
	}
	driver, dsn := "pgx", spec.url
	if spec.kind == storeSQLite {
		// One writer at a time, each local transaction taking the write
		// lock when it begins (see package sqlhandler).
		driver, dsn = "sqlite", "file:"+spec.path+"?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("--store %s: %w", spec, err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("--store %s: cannot connect: %w", spec, err)
	}
	s, created, err := bank.OpenSQL(pctx, db, name, seed, log)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("--store %s: %w", spec, err)
	}
	return &openedStore{handler: s.Handler(), ledger: s, created: created, close: func() error {
		return errors.Join(s.Close(), db.Close())
	}}, nil
}
