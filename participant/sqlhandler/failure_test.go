package sqlhandler_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"

	"github.com/concord-tx/concord/internal/testkit/pgtest"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// A database that fails under the user's Prepare (PostgreSQL: the
// server ends the connection; SQLite: another process holds the write
// lock) is a retry, never a no vote, and leaves no row.
func TestDatabaseFailureIsARetryNotANo(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		db := openPostgres(t)
		s := newStock(t, db, 10)
		admin, err := pgtest.Connect(t)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		kill := true
		s.prepareHook = func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			if !kill {
				return nil
			}
			var pid int
			if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
				t.Errorf("terminate: %v", err)
			}
			_, err := tx.ExecContext(ctx, "SELECT 1")
			return err // the connection is gone
		}
		h := newHandler(t, db, s.funcs(), sqlhandler.WithConflictRetries(0))
		err = h.Prepare(ctx, tx("t1-2", 10))
		var refused *sqlhandler.RefusedError
		if !errors.Is(err, participant.ErrRetry) || errors.As(err, &refused) {
			t.Fatalf("prepare on a dropped connection: %v, want a retry", err)
		}
		if got := phases(t, h); len(got) != 0 {
			t.Fatalf("recorded %v", got)
		}
		kill = false
		if err := h.Prepare(ctx, tx("t1-2", 10)); err != nil {
			t.Fatal(err)
		}
		if _, held := s.item(t); held != 2 {
			t.Errorf("held %d, want 2", held)
		}
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "busy.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_busy_timeout=50")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs(), sqlhandler.WithConflictRetries(0))
		other, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate")
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		holder, err := other.BeginTx(ctx, nil) // holds the write lock
		if err != nil {
			t.Fatal(err)
		}
		err = h.Prepare(ctx, tx("t1-2", 10))
		var refused *sqlhandler.RefusedError
		if !errors.Is(err, participant.ErrRetry) || errors.As(err, &refused) {
			t.Fatalf("prepare on a locked database: %v, want a retry", err)
		}
		holder.Rollback()
		if got := phases(t, h); len(got) != 0 {
			t.Fatalf("recorded %v", got)
		}
		if err := h.Prepare(ctx, tx("t1-2", 10)); err != nil {
			t.Fatal(err)
		}
		if s.prepares.Load() != 1 {
			t.Errorf("user prepares %d, want 1 (the locked attempt never reached it)", s.prepares.Load())
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		// The user's Prepare meets a PostgreSQL server that does not
		// answer (here an address where nothing listens): pgx's error for
		// it is a database failure too.
		down, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=2")
		if err != nil {
			t.Fatal(err)
		}
		defer down.Close()
		db := openSQLite(t)
		s := newStock(t, db, 10)
		s.prepareHook = func(ctx context.Context, _ *sql.Tx, _ participant.Tx) error {
			return down.PingContext(ctx)
		}
		h := newHandler(t, db, s.funcs(), sqlhandler.WithConflictRetries(0))
		err = h.Prepare(ctx, tx("t1-2", 10))
		var refused *sqlhandler.RefusedError
		if !errors.Is(err, participant.ErrRetry) || errors.As(err, &refused) {
			t.Fatalf("prepare with the server down: %v, want a retry", err)
		}
		if got := phases(t, h); len(got) != 0 {
			t.Fatalf("recorded %v", got)
		}
	})
	t.Run("closed", func(t *testing.T) {
		db := openSQLite(t)
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs())
		db.Close()
		for _, call := range []func(context.Context, participant.Tx) error{h.Prepare, h.Commit, h.Abort} {
			if err := call(ctx, tx("t1-1", 1)); !errors.Is(err, participant.ErrRetry) {
				t.Errorf("call on a closed database: %v, want a retry", err)
			}
		}
	})
}
