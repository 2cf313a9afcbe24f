package sqlhandler

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// SchemaVersion is the version of the bookkeeping table this package
// reads and writes. It is kept in the table named after it with the suffix
// "_version"; New refuses a table of another version.
const SchemaVersion = 1

// DefaultTable is the bookkeeping table's name unless WithTable says
// otherwise.
const DefaultTable = "concord_tx"

var tableName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,50}$`)

// Schema returns the SQL that creates the bookkeeping tables named table
// (and table_version), for teams whose migrations are run elsewhere (see
// WithoutCreate). The same text serves PostgreSQL and SQLite; running it
// twice changes nothing.
//
// One row per (participant, txid, revision): several participants may
// share the table. updated is in Unix milliseconds; the index serves
// Cleanup.
func Schema(table string) (string, error) {
	stmts, err := schemaStatements(table)
	if err != nil {
		return "", err
	}
	return strings.Join(stmts, ";\n") + ";\n", nil
}

func schemaStatements(table string) ([]string, error) {
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("%w: table name %q, expected 1 to 51 characters of [a-z0-9_], not starting with a digit", ErrInvalidConfig, table)
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (
    participant TEXT   NOT NULL,
    txid        TEXT   NOT NULL,
    revision    BIGINT NOT NULL,
    phase       TEXT   NOT NULL,
    reason      TEXT   NOT NULL,
    updated     BIGINT NOT NULL,
    PRIMARY KEY (participant, txid, revision)
)`,
		`CREATE INDEX IF NOT EXISTS ` + table + `_updated ON ` + table + ` (participant, updated)`,
		`CREATE TABLE IF NOT EXISTS ` + table + `_version (version INTEGER NOT NULL)`,
		`INSERT INTO ` + table + `_version (version) SELECT ` + strconv.Itoa(SchemaVersion) +
			` WHERE NOT EXISTS (SELECT 1 FROM ` + table + `_version)`,
	}, nil
}

// ensureSchema checks the bookkeeping tables, creating them first if they
// are missing and create is set.
func ensureSchema(ctx context.Context, db *sql.DB, table string, create bool) error {
	err := checkSchema(ctx, db, table)
	if !errors.Is(err, errNoTable) || !create {
		return err
	}
	stmts, _ := schemaStatements(table) // the name was checked by New
	if cerr := execAll(ctx, db, stmts); cerr != nil {
		// Another process may have created it at the same time.
		if checkSchema(ctx, db, table) == nil {
			return nil
		}
		sqlText, _ := Schema(table)
		return fmt.Errorf("%w %s is missing and could not be created (%v); run this SQL as a user who may create tables (sqlhandler.Schema returns it), then grant this one SELECT, INSERT, UPDATE, DELETE on %s and SELECT on %s_version:\n%s",
			ErrSchema, table, cerr, table, table, sqlText)
	}
	return checkSchema(ctx, db, table)
}

var errNoTable = errors.New("no such table")

func checkSchema(ctx context.Context, db *sql.DB, table string) error {
	sqlText, _ := Schema(table)
	var version int
	err := db.QueryRowContext(ctx, "SELECT version FROM "+table+"_version").Scan(&version)
	switch {
	case isUndefinedTable(err):
		return fmt.Errorf("%w %s is missing (%w); run this SQL (sqlhandler.Schema returns it):\n%s", ErrSchema, table, errNoTable, sqlText)
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%w %s_version is empty, expected the row version=%d; run this SQL (sqlhandler.Schema returns it):\n%s", ErrSchema, table, SchemaVersion, sqlText)
	case err != nil:
		return fmt.Errorf("%w %s: reading %s_version: %v", ErrSchema, table, table, err)
	case version != SchemaVersion:
		return fmt.Errorf("%w %s is of version %d, this version of Concord reads version %d; migrate it, or use another table (sqlhandler.WithTable)", ErrSchema, table, version, SchemaVersion)
	}
	rows, err := db.QueryContext(ctx, "SELECT participant, txid, revision, phase, reason, updated FROM "+table+" WHERE 1 = 0")
	if err != nil {
		return fmt.Errorf("%w %s: version %d but not its columns (%v); drop it and run:\n%s", ErrSchema, table, version, err, sqlText)
	}
	return rows.Close()
}

func execAll(ctx context.Context, db *sql.DB, stmts []string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return err
		}
	}
	return tx.Commit()
}
