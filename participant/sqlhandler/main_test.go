package sqlhandler_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/leaktest"
	"github.com/concord-tx/concord/internal/testkit/pgtest"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

func TestMain(m *testing.M) {
	// pgx's pools and database/sql's connection openers belong to *sql.DB
	// values closed by the tests.
	leaktest.VerifyTestMain(m, goleak.IgnoreTopFunction("database/sql.(*DB).connectionOpener"))
}

// backend is a real database of one dialect.
type backend struct {
	name string
	open func(t testing.TB) *sql.DB
}

var backends = []backend{
	{"sqlite", openSQLite},
	{"postgres", openPostgres},
}

// sqliteDSN is how a service should open SQLite for the handler.
func sqliteDSN(path string) string {
	return "file:" + path + "?_txlock=immediate&_busy_timeout=10000&_journal_mode=WAL"
}

func openSQLite(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", sqliteDSN(filepath.Join(t.TempDir(), "test.db")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func openPostgres(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// forEach runs test on every backend.
func forEach(t *testing.T, test func(t *testing.T, db *sql.DB)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { test(t, b.open(t)) })
	}
}

// stock is the user's service in the tests: items with a quantity and
// what prepared orders hold of it. Prepare holds the payload's quantity of
// item "x" (refusing when too little is free), Commit takes it out, Abort
// gives it back. Each function counts its calls.
type stock struct {
	db                        *sql.DB
	prepares, commits, aborts atomic.Int64
	// prepareHook, if set, runs inside the user's Prepare before it
	// returns; its error is Prepare's.
	prepareHook func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error
}

func newStock(t testing.TB, db *sql.DB, qty int64) *stock {
	t.Helper()
	ctx := context.Background()
	for _, s := range []string{
		"CREATE TABLE items (name TEXT PRIMARY KEY, qty BIGINT NOT NULL, held BIGINT NOT NULL)",
		"CREATE TABLE journal (txid TEXT NOT NULL, note TEXT NOT NULL)",
		fmt.Sprintf("INSERT INTO items VALUES ('x', %d, 0)", qty),
	} {
		if _, err := db.ExecContext(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	return &stock{db: db}
}

func amountOf(ptx participant.Tx) int64 {
	n, _ := strconv.ParseInt(string(ptx.Payload), 10, 64)
	return n
}

func (s *stock) funcs() sqlhandler.Funcs {
	return sqlhandler.Funcs{
		Prepare: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			s.prepares.Add(1)
			n := amountOf(ptx)
			if _, err := tx.ExecContext(ctx, "INSERT INTO journal VALUES ($1, 'prepare')", ptx.ID); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, "UPDATE items SET held = held + $1 WHERE name = 'x' AND qty - held >= $1", n)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k != 1 {
				return fmt.Errorf("out of stock: %d wanted", n)
			}
			if s.prepareHook != nil {
				return s.prepareHook(ctx, tx, ptx)
			}
			return nil
		},
		Commit: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			s.commits.Add(1)
			_, err := tx.ExecContext(ctx, "UPDATE items SET qty = qty - $1, held = held - $1 WHERE name = 'x'", s.heldBy(ctx, tx, ptx))
			return err
		},
		Abort: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			s.aborts.Add(1)
			_, err := tx.ExecContext(ctx, "UPDATE items SET held = held - $1 WHERE name = 'x'", s.heldBy(ctx, tx, ptx))
			return err
		},
	}
}

// heldBy is what ptx's Prepare held: the quantity in the id's suffix.
func (s *stock) heldBy(_ context.Context, _ *sql.Tx, ptx participant.Tx) int64 {
	return amountOfID(ptx.ID)
}

// amountOfID is the number after the id's last '-': "t1-5" asks for 5.
func amountOfID(id string) int64 {
	var n int64
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		n, _ = strconv.ParseInt(id[i+1:], 10, 64)
	}
	return n
}

// item reads item x.
func (s *stock) item(t testing.TB) (qty, held int64) {
	t.Helper()
	if err := s.db.QueryRow("SELECT qty, held FROM items WHERE name = 'x'").Scan(&qty, &held); err != nil {
		t.Fatal(err)
	}
	return qty, held
}

func (s *stock) journal(t testing.TB) int {
	t.Helper()
	var n int
	if err := s.db.QueryRow("SELECT count(*) FROM journal").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func newHandler(t testing.TB, db *sql.DB, f sqlhandler.Funcs, opts ...sqlhandler.Option) *sqlhandler.Handler {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := sqlhandler.New(ctx, db, "shop", f, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// tx is the description of transaction id begun at rev, whose Prepare
// asks for the quantity in id's suffix ("t1-5" holds 5).
func tx(id string, rev int64) participant.Tx {
	return participant.Tx{ID: id, Revision: rev, Participants: []string{"shop"}, Deadline: time.Now().Add(time.Minute),
		Payload: fmt.Append(nil, amountOfID(id))}
}

// phases returns the recorded phase of each (id, revision).
func phases(t testing.TB, h *sqlhandler.Handler) map[string]string {
	t.Helper()
	recs, err := h.Records(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string)
	for _, r := range recs {
		out[fmt.Sprintf("%s@%d", r.ID, r.Revision)] = r.Phase.String()
	}
	return out
}
