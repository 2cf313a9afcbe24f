package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
	"go.uber.org/zap"
)

// SQLFormat is the version of the SQL bank's tables, kept in
// bank_version.
const SQLFormat = 1

// sqlSchema creates the SQL bank's tables: the accounts, and the moves of
// each prepared transaction (its Commit and Abort are not given the
// payload). The phases are sqlhandler's table. One bank per database (or
// PostgreSQL schema).
var sqlSchema = []string{
	`CREATE TABLE IF NOT EXISTS bank_accounts (
    name     TEXT   PRIMARY KEY,
    balance  BIGINT NOT NULL,
    held     BIGINT NOT NULL,
    incoming BIGINT NOT NULL
)`,
	`CREATE TABLE IF NOT EXISTS bank_moves (
    txid     TEXT   NOT NULL,
    revision BIGINT NOT NULL,
    account  TEXT   NOT NULL,
    amount   BIGINT NOT NULL,
    PRIMARY KEY (txid, revision, account)
)`,
	`CREATE TABLE IF NOT EXISTS bank_version (version INTEGER NOT NULL)`,
}

// SQLSchema returns the SQL that creates the SQL bank's tables, with
// sqlhandler's: what to run for a database user that may not create
// tables.
func SQLSchema() string {
	phases, _ := sqlhandler.Schema(sqlhandler.DefaultTable)
	return strings.Join(sqlSchema, ";\n") + ";\n" + fmt.Sprintf("INSERT INTO bank_version (version) VALUES (%d);\n", SQLFormat) + phases
}

// SQLStore is the bank on a SQL database: the accounts in bank_accounts,
// each handler call one local transaction through sqlhandler, which
// records the phases. It is safe for concurrent use.
type SQLStore struct {
	db      *sql.DB
	h       *sqlhandler.Handler
	log     *zap.Logger
	lock    string // " FOR UPDATE" where rows can be locked
	timeout time.Duration
}

// OpenSQL opens the bank of participant name on db: it creates the
// tables if they are missing (seeding a new bank with the opening
// balances; an existing one keeps its own, and created tells which) and
// checks their versions. The error of a missing table that cannot be
// created, or of another version, holds the SQL to run.
func OpenSQL(ctx context.Context, db *sql.DB, name string, opening map[string]int64, log *zap.Logger) (s *SQLStore, created bool, err error) {
	s = &SQLStore{db: db, log: log, timeout: 10 * time.Second}
	if fmt.Sprintf("%T", db.Driver()) == "*stdlib.Driver" {
		s.lock = " FOR UPDATE"
	}
	if created, err = s.ensure(ctx, opening); err != nil {
		return nil, false, err
	}
	s.h, err = sqlhandler.New(ctx, db, name, sqlhandler.Funcs{Prepare: s.prepare, Commit: s.commit, Abort: s.abort},
		sqlhandler.WithLogger(log.Named("sqlhandler")), sqlhandler.WithCleanup(sqlhandler.DefaultCleanupInterval, sqlhandler.DefaultRetention))
	if err != nil {
		return nil, false, fmt.Errorf("bank: %w", err)
	}
	return s, created, nil
}

// Handler is the bank's participant.Handler: sqlhandler's, with each
// call traced and logged as the bbolt store's are.
func (s *SQLStore) Handler() *Handler { return newHandler(sqlCalls{s.h}, WithLogger(s.log)) }

// Close stops the bookkeeping cleanup. The database is the caller's.
func (s *SQLStore) Close() error { return s.h.Close() }

func (s *SQLStore) ensure(ctx context.Context, opening map[string]int64) (bool, error) {
	var version int
	err := s.db.QueryRowContext(ctx, "SELECT version FROM bank_version").Scan(&version)
	switch {
	case err == nil && version == SQLFormat:
		return false, nil
	case err == nil:
		return false, fmt.Errorf("%w: bank_version says %d, this version of the bank reads %d; use another database", ErrCorrupt, version, SQLFormat)
	case errors.Is(err, sql.ErrNoRows):
		return false, fmt.Errorf("%w: bank_version is empty; drop the bank's tables, or run:\nINSERT INTO bank_version (version) VALUES (%d);", ErrCorrupt, SQLFormat)
	case !strings.Contains(err.Error(), "no such table") && !strings.Contains(err.Error(), "does not exist"):
		return false, fmt.Errorf("bank: read bank_version: %w", err)
	}
	for name, balance := range opening {
		if err := ValidateAccount(name); err != nil {
			return false, err
		}
		if balance < 0 {
			return false, fmt.Errorf("%w: %s: opening balance %d is negative", ErrInvalidAccount, name, balance)
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	stmts := append(append([]string(nil), sqlSchema...), fmt.Sprintf("INSERT INTO bank_version (version) VALUES (%d)", SQLFormat))
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return false, fmt.Errorf("bank: the tables are missing and could not be created (%v); run this SQL as a user who may create tables, then grant this one SELECT, INSERT, UPDATE, DELETE on them:\n%s", err, SQLSchema())
		}
	}
	for name, balance := range opening {
		if _, err := tx.ExecContext(ctx, "INSERT INTO bank_accounts (name, balance, held, incoming) VALUES ($1, $2, 0, 0)", name, balance); err != nil {
			return false, err
		}
	}
	return true, tx.Commit()
}

// account reads one account, locked until the local transaction ends.
func (s *SQLStore) account(ctx context.Context, tx *sql.Tx, name string) (Account, bool, error) {
	var a Account
	err := tx.QueryRowContext(ctx, "SELECT balance, held, incoming FROM bank_accounts WHERE name = $1"+s.lock, name).Scan(&a.Balance, &a.Held, &a.Incoming)
	if errors.Is(err, sql.ErrNoRows) {
		return a, false, nil
	}
	return a, err == nil, err
}

func (s *SQLStore) put(ctx context.Context, tx *sql.Tx, name string, a Account) error {
	_, err := tx.ExecContext(ctx, "UPDATE bank_accounts SET balance = $1, held = $2, incoming = $3 WHERE name = $4", a.Balance, a.Held, a.Incoming, name)
	return err
}

// prepare reserves the moves (see Account.reserve) and keeps them for
// Commit and Abort. Its refusals are the bbolt bank's, word for word.
func (s *SQLStore) prepare(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
	markRan(ctx)
	moves, err := ParsePayload(ptx.Payload)
	if err != nil {
		return err
	}
	// Rows are locked in the order of their names, as settle does: two
	// transfers between the same two accounts in opposite directions
	// would otherwise each hold the row the other waits for. They are
	// checked in the payload's order, as the bbolt bank does, so that a
	// refusal names the same move.
	names := make([]string, len(moves)) // no account twice: see ParsePayload
	for i, m := range moves {
		names[i] = m.Account
	}
	slices.Sort(names)
	byName := make(map[string]Account, len(moves))
	found := make(map[string]bool, len(moves))
	for _, name := range names {
		a, ok, err := s.account(ctx, tx, name)
		if err != nil {
			return err
		}
		byName[name], found[name] = a, ok
	}
	loaded := make([]Account, len(moves))
	for i, m := range moves {
		if !found[m.Account] {
			return fmt.Errorf("%w: %s", ErrUnknownAccount, m.Account)
		}
		if loaded[i], err = byName[m.Account].reserve(m.Account, m.Amount); err != nil {
			return err
		}
	}
	for i, m := range moves {
		if err := s.put(ctx, tx, m.Account, loaded[i]); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO bank_moves (txid, revision, account, amount) VALUES ($1, $2, $3, $4)", ptx.ID, ptx.Revision, m.Account, m.Amount); err != nil {
			return err
		}
	}
	return nil
}

func (s *SQLStore) commit(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
	return s.settle(ctx, tx, ptx, func(a Account, m Move) (Account, error) { return a.apply(m.Account, m.Amount) })
}

func (s *SQLStore) abort(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
	return s.settle(ctx, tx, ptx, func(a Account, m Move) (Account, error) { return a.release(m.Amount), nil })
}

// settle applies f to each prepared move of ptx and forgets the moves.
func (s *SQLStore) settle(ctx context.Context, tx *sql.Tx, ptx participant.Tx, f func(Account, Move) (Account, error)) error {
	markRan(ctx)
	moves, err := s.moves(ctx, tx, ptx)
	if err != nil {
		return err
	}
	for _, m := range moves {
		a, found, err := s.account(ctx, tx, m.Account)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%w: account %s of a prepared transaction is gone", ErrCorrupt, m.Account)
		}
		if a, err = f(a, m); err != nil {
			return err
		}
		if err := s.put(ctx, tx, m.Account, a); err != nil {
			return err
		}
	}
	_, err = tx.ExecContext(ctx, "DELETE FROM bank_moves WHERE txid = $1 AND revision = $2", ptx.ID, ptx.Revision)
	return err
}

func (s *SQLStore) moves(ctx context.Context, tx *sql.Tx, ptx participant.Tx) ([]Move, error) {
	rows, err := tx.QueryContext(ctx, "SELECT account, amount FROM bank_moves WHERE txid = $1 AND revision = $2 ORDER BY account", ptx.ID, ptx.Revision)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Move
	for rows.Next() {
		var m Move
		if err := rows.Scan(&m.Account, &m.Amount); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Accounts returns every account, by name.
func (s *SQLStore) Accounts() (map[string]Account, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, "SELECT name, balance, held, incoming FROM bank_accounts")
	if err != nil {
		return nil, fmt.Errorf("bank: read accounts: %w", err)
	}
	defer rows.Close()
	out := make(map[string]Account)
	for rows.Next() {
		var name string
		var a Account
		if err := rows.Scan(&name, &a.Balance, &a.Held, &a.Incoming); err != nil {
			return nil, fmt.Errorf("bank: read accounts: %w", err)
		}
		out[name] = a
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("bank: read accounts: %w", err)
	}
	return out, nil
}

// Applied returns the phase recorded for every transaction, by id (the
// latest transaction of an id reused after the retention window).
func (s *SQLStore) Applied() (map[string]Phase, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	recs, err := s.h.Records(ctx)
	if err != nil {
		return nil, fmt.Errorf("bank: %w", err)
	}
	out := make(map[string]Phase, len(recs))
	for _, r := range recs { // by id, then revision: the latest wins
		out[r.ID] = r.Phase
	}
	return out, nil
}
