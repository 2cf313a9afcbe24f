// Package sqlhandler makes a participant.Handler of three functions for a
// service whose state is in a SQL database (database/sql), and does the
// bookkeeping that makes their effects exactly-once.
//
// The user writes Prepare, Commit and Abort as functions that receive the
// local transaction (*sql.Tx) and the participant.Tx. For every call the
// handler opens the local transaction, records the phase of (participant,
// transaction id, revision) in a table of its own in that same local
// transaction, and commits both together, so a crash leaves both or
// neither. With no code from the user it guarantees:
//
//   - A repeated call (a redelivery, a crash before the vote or the
//     acknowledgement was written, a standby's takeover) returns what the
//     first one returned, without calling the user's function again.
//   - An Abort with no Prepare before it records the abort (the user's
//     Abort is not called: nothing was reserved), and a later Prepare for
//     that transaction votes no (ErrAlreadyAborted) without calling the
//     user.
//   - A Commit or Abort after a crash applies once: the user's writes and
//     the phase commit together.
//   - A Prepare that fails leaves nothing behind but the no vote: the
//     user's writes are rolled back, and the refusal and its reason are
//     recorded in a local transaction of their own.
//   - A transaction that reuses an old id (the coordinator keeps an id
//     unique only for its retention window) has another Revision, and so
//     another row: it is not taken for a repeat.
//   - Final rows are removed after a retention window, by a background
//     cleanup (WithCleanup; Close stops it) or by calling Cleanup.
//   - A database that is down, or a serialization failure, is never a no
//     vote: Prepare returns an error wrapping participant.ErrRetry, and the
//     participant calls it again after a backoff until the deadline, when
//     the coordinator aborts. The user's Prepare error counts as a
//     database failure, not a refusal, if it is one (a lost connection,
//     PostgreSQL SQLSTATE classes 08, 40, 53, 57 and 58, SQLite's busy,
//     locked, I/O and full errors) or wraps participant.ErrRetry. Any
//     other error is the database's or the user's answer (a violated
//     CHECK constraint, insufficient funds) and votes no.
//
// # Concurrent calls and isolation
//
// The participant never overlaps calls for one transaction, but two
// instances can (one paused past its lease while its successor takes
// over). The bookkeeping is safe under READ COMMITTED, PostgreSQL's
// default, and needs no more: Prepare inserts its row first, so a
// concurrent Prepare's insert waits on the row's primary key and then
// finds it; Commit and Abort read the row with SELECT … FOR UPDATE, so a
// concurrent one waits and then sees the phase the first recorded.
// Running the user's function and recording the phase in one local
// transaction is what makes the effect exactly-once, at any level.
//
// What the user's functions need is theirs to choose: a check and a
// write in one statement (UPDATE accounts SET held = held + $1 WHERE name
// = $2 AND balance - held >= $1) is safe under READ COMMITTED; a check
// read by one statement and acted on by another needs SELECT … FOR
// UPDATE, or WithIsolation(sql.LevelSerializable), whose serialization
// failures are run again at once (WithConflictRetries) and then retried
// by the participant — never a no vote.
//
// SQLite has no row locks: a writing local transaction holds the whole
// database. Open it with _txlock=immediate, so that each local
// transaction takes the write lock when it begins rather than failing to
// upgrade a read lock, and with a busy timeout, e.g.
//
//	sql.Open("sqlite", "file:bank.db?_txlock=immediate&_busy_timeout=5000&_journal_mode=WAL")
//
// # The table
//
// New creates the table (named by WithTable, default "concord_tx") and
// its version table if they are missing, and refuses a table of another
// version (ErrSchema). For teams whose migrations run elsewhere,
// WithoutCreate only checks, and Schema returns the SQL to run; it is the
// same for PostgreSQL and SQLite:
//
//	CREATE TABLE IF NOT EXISTS concord_tx (
//	    participant TEXT   NOT NULL,
//	    txid        TEXT   NOT NULL,
//	    revision    BIGINT NOT NULL,
//	    phase       TEXT   NOT NULL,
//	    reason      TEXT   NOT NULL,
//	    updated     BIGINT NOT NULL,
//	    PRIMARY KEY (participant, txid, revision)
//	);
//	CREATE INDEX IF NOT EXISTS concord_tx_updated ON concord_tx (participant, updated);
//	CREATE TABLE IF NOT EXISTS concord_tx_version (version INTEGER NOT NULL);
//	INSERT INTO concord_tx_version (version) SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM concord_tx_version);
//
// The user the service connects as then needs SELECT, INSERT, UPDATE and
// DELETE on concord_tx and SELECT on concord_tx_version.
//
// A call costs the user's statements plus one statement of bookkeeping
// (two for Commit and for a prepared Abort) in the same local transaction:
// see BenchmarkBookkeeping.
package sqlhandler
