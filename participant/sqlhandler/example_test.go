package sqlhandler_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// A service on SQLite writes only its business logic; the handler records
// the phases. Here the calls are made directly; a service passes the
// handler to participant.New instead.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "sqlhandler-example-")
	defer os.RemoveAll(dir)
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "seats.db")+"?_txlock=immediate&_busy_timeout=5000")
	if err != nil {
		panic(err)
	}
	defer db.Close()
	db.Exec("CREATE TABLE seats (seat TEXT PRIMARY KEY, held_by TEXT, sold BOOLEAN NOT NULL DEFAULT FALSE)")
	db.Exec("INSERT INTO seats (seat) VALUES ('12A')")

	h, err := sqlhandler.New(ctx, db, "seats", sqlhandler.Funcs{
		Prepare: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			res, err := tx.ExecContext(ctx, "UPDATE seats SET held_by = $1 WHERE seat = $2 AND held_by IS NULL", ptx.ID, string(ptx.Payload))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("seat %s is taken", ptx.Payload) // the no vote's reason
			}
			return nil
		},
		Commit: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE seats SET sold = TRUE WHERE held_by = $1", ptx.ID)
			return err
		},
		Abort: func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			_, err := tx.ExecContext(ctx, "UPDATE seats SET held_by = NULL WHERE held_by = $1", ptx.ID)
			return err
		},
	})
	if err != nil {
		panic(err)
	}
	defer h.Close()

	first := participant.Tx{ID: "order-1", Revision: 10, Payload: []byte("12A")}
	fmt.Println(h.Prepare(ctx, first))
	fmt.Println(h.Prepare(ctx, first)) // a repeat: answered from the table
	fmt.Println(h.Commit(ctx, first))
	fmt.Println(h.Prepare(ctx, participant.Tx{ID: "order-2", Revision: 11, Payload: []byte("12A")}))

	h.Abort(ctx, participant.Tx{ID: "order-3", Revision: 12}) // the abort came first
	err = h.Prepare(ctx, participant.Tx{ID: "order-3", Revision: 12, Payload: []byte("12A")})
	fmt.Println(errors.Is(err, sqlhandler.ErrAlreadyAborted))
	// Output:
	// <nil>
	// <nil>
	// <nil>
	// seat 12A is taken
	// true
}
