package sqlhandler

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// queries are the handler's statements in its database's dialect.
type queries struct {
	insert, lock, lockLatest, update, records, cleanup string
}

func newQueries(d Dialect, table string) queries {
	forUpdate := ""
	if d == PostgreSQL {
		// SQLite has no row locks: its local transaction holds the
		// database's write lock (see the package documentation).
		forUpdate = " FOR UPDATE"
	}
	final := "('" + PhaseCommitted.String() + "', '" + PhaseAborted.String() + "', '" + PhaseRefused.String() + "')"
	q := queries{
		insert: "INSERT INTO " + table + " (participant, txid, revision, phase, reason, updated) VALUES (?, ?, ?, ?, ?, ?)" +
			" ON CONFLICT (participant, txid, revision) DO NOTHING",
		lock:       "SELECT revision, phase, reason FROM " + table + " WHERE participant = ? AND txid = ? AND revision = ?" + forUpdate,
		lockLatest: "SELECT revision, phase, reason FROM " + table + " WHERE participant = ? AND txid = ? ORDER BY revision DESC LIMIT 1" + forUpdate,
		update:     "UPDATE " + table + " SET phase = ?, reason = ?, updated = ? WHERE participant = ? AND txid = ? AND revision = ?",
		records:    "SELECT txid, revision, phase, reason, updated FROM " + table + " WHERE participant = ? ORDER BY txid, revision",
		cleanup:    "DELETE FROM " + table + " WHERE participant = ? AND updated < ? AND phase IN " + final,
	}
	if d == PostgreSQL {
		for _, s := range []*string{&q.insert, &q.lock, &q.lockLatest, &q.update, &q.records, &q.cleanup} {
			*s = numbered(*s)
		}
	}
	return q
}

// numbered turns ? placeholders into PostgreSQL's $1, $2, …; the
// statements above hold no other question mark.
func numbered(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// dialectOf recognises db's driver by its type.
func dialectOf(db *sql.DB) Dialect {
	switch fmt.Sprintf("%T", db.Driver()) {
	case "*stdlib.Driver", "*pq.Driver":
		return PostgreSQL
	case "*sqlite.Driver", "*sqlite3.SQLiteDriver":
		return SQLite
	}
	return DialectUnknown
}
