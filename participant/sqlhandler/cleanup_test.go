package sqlhandler_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// age moves every row's last change back by d.
func age(t testing.TB, db *sql.DB, d time.Duration) {
	t.Helper()
	if _, err := db.Exec("UPDATE concord_tx SET updated = updated - $1", d.Milliseconds()); err != nil {
		t.Fatal(err)
	}
}

// Cleanup removes final rows older than its argument and keeps prepared
// ones, whatever their age, and recent ones.
func TestCleanupRemovesOnlyOldFinalRows(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 100)
		h := newHandler(t, db, s.funcs())
		for _, id := range []string{"c-1", "p-1", "r-1000", "a-1"} {
			h.Prepare(ctx, tx(id, 1))
		}
		if err := h.Commit(ctx, tx("c-1", 1)); err != nil {
			t.Fatal(err)
		}
		if err := h.Abort(ctx, tx("a-1", 1)); err != nil {
			t.Fatal(err)
		}
		age(t, db, 2*time.Hour)
		if err := h.Abort(ctx, tx("new-1", 1)); err != nil { // recent
			t.Fatal(err)
		}
		n, err := h.Cleanup(ctx, time.Hour)
		if err != nil || n != 3 {
			t.Fatalf("cleanup: %d rows, %v; want 3", n, err)
		}
		want := map[string]string{"p-1@1": "prepared", "new-1@1": "aborted"}
		if got := phases(t, h); !equalMaps(got, want) {
			t.Errorf("left %v, want %v", got, want)
		}
	})
}

// The background cleanup removes old final rows on its own, and Close
// stops it (TestMain checks that no goroutine is left).
func TestBackgroundCleanup(t *testing.T) {
	db := openSQLite(t)
	s := newStock(t, db, 100)
	h := newHandler(t, db, s.funcs(), sqlhandler.WithCleanup(10*time.Millisecond, time.Hour))
	if err := h.Abort(ctx, tx("a-1", 1)); err != nil {
		t.Fatal(err)
	}
	if err := h.Prepare(ctx, tx("p-1", 1)); err != nil {
		t.Fatal(err)
	}
	age(t, db, 2*time.Hour)
	poll.Until(t, 10*time.Second, "old aborted row removed", func() (bool, string) {
		got := phases(t, h)
		return equalMaps(got, map[string]string{"p-1@1": "prepared"}), fmt.Sprint(got)
	})
	h.Close()
	h.Close() // idempotent
}
