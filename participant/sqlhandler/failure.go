package sqlhandler

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
)

// databaseFailure reports whether err says the database could not do the
// work rather than that it refused it: a lost connection, a server
// shutting down or out of resources, a serialization failure or deadlock
// (PostgreSQL SQLSTATE classes 08, 40, 53, 57, 58), a busy, locked or
// failing SQLite file. The user's Prepare failing so is retried, never a
// no vote: the database decided nothing. A constraint violation (class 23)
// and the like are answers, and vote no.
//
// Drivers are recognised by the methods of their errors (SQLState() of
// pgx and lib/pq, Code() of modernc.org/sqlite), so that this package
// imports none of them.
func databaseFailure(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		switch code := st.SQLState(); {
		case len(code) < 2:
		case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "40"), strings.HasPrefix(code, "53"),
			strings.HasPrefix(code, "57"), strings.HasPrefix(code, "58"):
			return true
		default:
			return false
		}
	}
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() & 0xff {
		case sqliteBusy, sqliteLocked, sqliteNoMem, sqliteIOErr, sqliteFull, sqliteCantOpen, sqliteProtocol:
			return true
		}
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne)
}

// SQLite primary result codes (sqlite3.h).
const (
	sqliteBusy     = 5
	sqliteLocked   = 6
	sqliteNoMem    = 7
	sqliteIOErr    = 10
	sqliteFull     = 13
	sqliteCantOpen = 14
	sqliteProtocol = 15
)

// isUndefinedTable reports whether err says a table does not exist:
// SQLSTATE 42P01 in PostgreSQL, "no such table" in SQLite.
func isUndefinedTable(err error) bool {
	if err == nil {
		return false
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return st.SQLState() == "42P01"
	}
	return strings.Contains(err.Error(), "no such table")
}
