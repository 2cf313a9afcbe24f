package sqlhandler_test

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concord-tx/concord/internal/testkit/pgtest"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

// New creates the table once; a second New checks it.
func TestNewCreatesThenChecksTheTable(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		newHandler(t, db, sqlhandler.Funcs{})
		newHandler(t, db, sqlhandler.Funcs{}) // creating again changes nothing
		newHandler(t, db, sqlhandler.Funcs{}, sqlhandler.WithoutCreate())
		var version int
		if err := db.QueryRow("SELECT version FROM concord_tx_version").Scan(&version); err != nil || version != sqlhandler.SchemaVersion {
			t.Errorf("version %d, %v", version, err)
		}
	})
}

// A missing table without the right (or the leave) to create it, and a
// table of another version, are ErrSchema with what to run.
func TestSchemaProblemsSayWhatToRun(t *testing.T) {
	schema, err := sqlhandler.Schema(sqlhandler.DefaultTable)
	if err != nil {
		t.Fatal(err)
	}
	forEach(t, func(t *testing.T, db *sql.DB) {
		_, err := sqlhandler.New(ctx, db, "shop", sqlhandler.Funcs{}, sqlhandler.WithoutCreate())
		if !errors.Is(err, sqlhandler.ErrSchema) || !strings.Contains(err.Error(), schema) || !strings.Contains(err.Error(), "concord_tx is missing") {
			t.Errorf("without create: %v, want ErrSchema with the SQL", err)
		}
		h := newHandler(t, db, sqlhandler.Funcs{})
		h.Close()
		if _, err := db.Exec("UPDATE concord_tx_version SET version = 7"); err != nil {
			t.Fatal(err)
		}
		_, err = sqlhandler.New(ctx, db, "shop", sqlhandler.Funcs{})
		if !errors.Is(err, sqlhandler.ErrSchema) || !strings.Contains(err.Error(), "version 7") || !strings.Contains(err.Error(), fmt.Sprint("version ", sqlhandler.SchemaVersion)) {
			t.Errorf("other version: %v", err)
		}
	})
	t.Run("postgres without rights", func(t *testing.T) {
		limited, err := sql.Open("pgx", pgtest.Unprivileged(t, pgtest.Schema(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer limited.Close()
		_, err = sqlhandler.New(ctx, limited, "shop", sqlhandler.Funcs{})
		if !errors.Is(err, sqlhandler.ErrSchema) || !contains(err.Error(), "could not be created", "permission denied", schema) {
			t.Errorf("without rights: %v", err)
		}
	})
}

func TestNewRefusesBadConfiguration(t *testing.T) {
	db := openSQLite(t)
	for name, f := range map[string]func() error{
		"nil db":   func() error { _, err := sqlhandler.New(ctx, nil, "shop", sqlhandler.Funcs{}); return err },
		"bad name": func() error { _, err := sqlhandler.New(ctx, db, "Shop A", sqlhandler.Funcs{}); return err },
		"bad table": func() error {
			_, err := sqlhandler.New(ctx, db, "shop", sqlhandler.Funcs{}, sqlhandler.WithTable("x; DROP"))
			return err
		},
		"bad cleanup": func() error {
			_, err := sqlhandler.New(ctx, db, "shop", sqlhandler.Funcs{}, sqlhandler.WithCleanup(-1, 0))
			return err
		},
	} {
		if err := f(); !errors.Is(err, sqlhandler.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}
