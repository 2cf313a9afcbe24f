package sqlhandler_test

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// BenchmarkBookkeeping measures what the handler adds to a call: the same
// user function (one UPDATE) run in a bare local transaction, and through
// the handler's Prepare and Commit (one transaction each, as a
// participant calls them).
//
//	go test -run '^$' -bench Bookkeeping -benchtime 2s -count 3 ./participant/sqlhandler/
func BenchmarkBookkeeping(b *testing.B) {
	user := func(ctx context.Context, tx *sql.Tx, _ participant.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE items SET held = held + 1 WHERE name = 'x'")
		return err
	}
	for _, be := range backends {
		b.Run(be.name+"/bare", func(b *testing.B) {
			db := be.open(b)
			newStock(b, db, 0)
			for b.Loop() {
				ltx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := user(ctx, ltx, participant.Tx{}); err != nil {
					b.Fatal(err)
				}
				if err := ltx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, phase := range []string{"prepare", "commit"} {
			b.Run(be.name+"/"+phase, func(b *testing.B) {
				db := be.open(b)
				newStock(b, db, 0)
				h := newHandler(b, db, sqlhandler.Funcs{Prepare: user, Commit: user}, sqlhandler.WithCleanup(0, sqlhandler.DefaultRetention))
				prepared := phase == "commit"
				var ids []participant.Tx
				if prepared {
					for i := range b.N {
						ptx := participant.Tx{ID: fmt.Sprint("b-", i), Revision: 1}
						if err := h.Prepare(ctx, ptx); err != nil {
							b.Fatal(err)
						}
						ids = append(ids, ptx)
					}
				}
				b.ResetTimer()
				for i := range b.N {
					var err error
					if prepared {
						err = h.Commit(ctx, ids[i])
					} else {
						err = h.Prepare(ctx, participant.Tx{ID: fmt.Sprint("b-", i), Revision: 1})
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
