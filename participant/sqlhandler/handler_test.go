package sqlhandler_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/participant/sqlhandler"
)

var ctx = context.Background()

// A repeated call answers as the first did and does not call the user
// again: a yes, a commit, a no with its reason, an abort.
func TestRepeatedCallAnswersAsTheFirst(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs())
		for range 3 {
			if err := h.Prepare(ctx, tx("t1-4", 100)); err != nil {
				t.Fatalf("prepare: %v", err)
			}
		}
		for range 3 {
			if err := h.Commit(ctx, tx("t1-4", 100)); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
		var first string
		for i := range 3 {
			err := h.Prepare(ctx, tx("t2-7", 101))
			var refused *sqlhandler.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("prepare t2: %v, want a refusal", err)
			}
			if i == 0 {
				first = refused.Reason
			} else if refused.Reason != first {
				t.Fatalf("repeated refusal %q, first %q", refused.Reason, first)
			}
		}
		for range 3 {
			if err := h.Abort(ctx, tx("t2-7", 101)); err != nil {
				t.Fatalf("abort t2: %v", err)
			}
		}
		if got := [3]int64{s.prepares.Load(), s.commits.Load(), s.aborts.Load()}; got != [3]int64{2, 1, 0} {
			t.Errorf("user calls (prepare, commit, abort) = %v, want [2 1 0]", got)
		}
		if qty, held := s.item(t); qty != 6 || held != 0 {
			t.Errorf("item x: qty %d held %d, want 6 and 0", qty, held)
		}
		if first != "out of stock: 7 wanted" {
			t.Errorf("reason %q", first)
		}
		want := map[string]string{"t1-4@100": "committed", "t2-7@101": "refused"}
		if got := phases(t, h); !equalMaps(got, want) {
			t.Errorf("phases %v, want %v", got, want)
		}
	})
}

// An Abort with no Prepare is recorded without calling the user, and a
// later Prepare votes no without calling the user.
func TestAbortFirstRefusesALatePrepare(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs())
		abort := tx("t1-3", 200)
		abort.Reason = "deadline"
		if err := h.Abort(ctx, abort); err != nil {
			t.Fatal(err)
		}
		err := h.Prepare(ctx, tx("t1-3", 200))
		if !errors.Is(err, sqlhandler.ErrAlreadyAborted) {
			t.Fatalf("late prepare: %v, want ErrAlreadyAborted", err)
		}
		if errors.Is(err, participant.ErrRetry) {
			t.Fatalf("late prepare: %v is a retry, want a no vote", err)
		}
		if n := s.prepares.Load() + s.aborts.Load(); n != 0 {
			t.Errorf("user called %d times", n)
		}
		if qty, held := s.item(t); qty != 10 || held != 0 {
			t.Errorf("item x: qty %d held %d", qty, held)
		}
		if got := phases(t, h); got["t1-3@200"] != "aborted" {
			t.Errorf("phases %v", got)
		}
	})
}

// A failed Prepare leaves nothing but the no: its writes (the journal row)
// are rolled back, the refusal is recorded, and the abort that follows
// does not call the user.
func TestFailedPrepareLeavesOnlyTheNo(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		s.prepareHook = func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			return errors.New("shop closed")
		}
		h := newHandler(t, db, s.funcs())
		err := h.Prepare(ctx, tx("t1-2", 300))
		var refused *sqlhandler.RefusedError
		if !errors.As(err, &refused) || refused.Reason != "shop closed" || errors.Is(err, participant.ErrRetry) {
			t.Fatalf("prepare: %v, want the refusal \"shop closed\"", err)
		}
		if n := s.journal(t); n != 0 {
			t.Errorf("%d journal rows left by the failed Prepare", n)
		}
		if qty, held := s.item(t); qty != 10 || held != 0 {
			t.Errorf("item x: qty %d held %d, want nothing held", qty, held)
		}
		if err := h.Abort(ctx, tx("t1-2", 300)); err != nil {
			t.Fatal(err)
		}
		if s.aborts.Load() != 0 {
			t.Error("the user's Abort was called after a refusal")
		}
		if got := phases(t, h); got["t1-2@300"] != "refused" {
			t.Errorf("phases %v", got)
		}
	})
}

// A transaction that reuses an id under a new revision is a new one: its
// Prepare runs, its Commit applies.
func TestReusedIDIsNotARepeat(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs())
		for _, rev := range []int64{400, 900} {
			if err := h.Prepare(ctx, tx("t1-3", rev)); err != nil {
				t.Fatal(err)
			}
			if err := h.Commit(ctx, tx("t1-3", rev)); err != nil {
				t.Fatal(err)
			}
		}
		if s.prepares.Load() != 2 || s.commits.Load() != 2 {
			t.Errorf("user prepares %d commits %d, want 2 and 2", s.prepares.Load(), s.commits.Load())
		}
		if qty, _ := s.item(t); qty != 4 {
			t.Errorf("qty %d, want 4", qty)
		}
		// A decision that does not carry the revision (0) is the latest's.
		if err := h.Commit(ctx, tx("t1-3", 0)); err != nil || s.commits.Load() != 2 {
			t.Errorf("commit without revision: %v, %d user commits", err, s.commits.Load())
		}
	})
}

// A Commit or Abort after a crash applies once: a crash inside the local
// transaction leaves nothing (the user's Commit failed midway), and a
// Commit repeated by a new process after the local commit does not apply
// again.
func TestCommitAfterCrashAppliesOnce(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		f := s.funcs()
		crash := true
		userCommit := f.Commit
		f.Commit = func(ctx context.Context, ltx *sql.Tx, ptx participant.Tx) error {
			if err := userCommit(ctx, ltx, ptx); err != nil {
				return err
			}
			if crash {
				return errors.New("process died before the local commit")
			}
			return nil
		}
		h := newHandler(t, db, f)
		for _, id := range []string{"t1-2", "t2-3"} {
			if err := h.Prepare(ctx, tx(id, 500)); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.Commit(ctx, tx("t1-2", 500)); !errors.Is(err, participant.ErrRetry) {
			t.Fatalf("commit: %v, want the failure, retried", err)
		}
		if qty, held := s.item(t); qty != 10 || held != 5 {
			t.Fatalf("after the failed commit: qty %d held %d, want 10 and 5", qty, held)
		}
		crash = false
		if err := h.Commit(ctx, tx("t1-2", 500)); err != nil {
			t.Fatal(err)
		}
		if err := h.Abort(ctx, tx("t2-3", 500)); err != nil {
			t.Fatal(err)
		}
		// The process restarts: a new handler on the same database gets the
		// decisions again (the acknowledgements were not written).
		h2 := newHandler(t, db, f)
		if err := h2.Commit(ctx, tx("t1-2", 500)); err != nil {
			t.Fatal(err)
		}
		if err := h2.Abort(ctx, tx("t2-3", 500)); err != nil {
			t.Fatal(err)
		}
		if qty, held := s.item(t); qty != 8 || held != 0 {
			t.Errorf("qty %d held %d, want 8 and 0", qty, held)
		}
		if s.commits.Load() != 2 || s.aborts.Load() != 1 {
			t.Errorf("user commits %d (one failed) aborts %d, want 2 and 1", s.commits.Load(), s.aborts.Load())
		}
	})
}

// Protocol violations are errors, not silent successes.
func TestProtocolViolations(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		h := newHandler(t, db, s.funcs())
		if err := h.Commit(ctx, tx("never-1", 1)); !errors.Is(err, sqlhandler.ErrNotPrepared) {
			t.Errorf("commit of an unknown transaction: %v", err)
		}
		if err := h.Prepare(ctx, tx("t1-1", 2)); err != nil {
			t.Fatal(err)
		}
		if err := h.Commit(ctx, tx("t1-1", 2)); err != nil {
			t.Fatal(err)
		}
		if err := h.Abort(ctx, tx("t1-1", 2)); !errors.Is(err, sqlhandler.ErrAlreadyCommitted) {
			t.Errorf("abort of a committed transaction: %v", err)
		}
	})
}

// Two instances preparing the same transaction at once (one paused past
// its lease, its successor taking over) call the user once: the second
// waits on the first's row and answers from it.
func TestConcurrentPreparesCallTheUserOnce(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		s.prepareHook = func(ctx context.Context, tx *sql.Tx, ptx participant.Tx) error {
			once.Do(func() { close(entered) })
			<-release
			return nil
		}
		h1, h2 := newHandler(t, db, s.funcs()), newHandler(t, db, s.funcs())
		errs := make(chan error, 2)
		go func() { errs <- h1.Prepare(ctx, tx("t1-4", 700)) }()
		<-entered
		go func() { errs <- h2.Prepare(ctx, tx("t1-4", 700)) }()
		close(release) // the second is blocked in the database or not started: either way it must find the row
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if n := s.prepares.Load(); n != 1 {
			t.Errorf("user's Prepare called %d times, want 1", n)
		}
		if _, held := s.item(t); held != 4 {
			t.Errorf("held %d, want 4", held)
		}
	})
}

// The user's own request for a retry is no vote: nothing is recorded, and
// the next call runs the user again.
func TestUserRetryIsNoVote(t *testing.T) {
	forEach(t, func(t *testing.T, db *sql.DB) {
		s := newStock(t, db, 10)
		fail := true
		s.prepareHook = func(context.Context, *sql.Tx, participant.Tx) error {
			if fail {
				return fmt.Errorf("upstream busy: %w", participant.ErrRetry)
			}
			return nil
		}
		h := newHandler(t, db, s.funcs())
		err := h.Prepare(ctx, tx("t1-1", 800))
		var refused *sqlhandler.RefusedError
		if !errors.Is(err, participant.ErrRetry) || errors.As(err, &refused) {
			t.Fatalf("prepare: %v, want a retry", err)
		}
		if got := phases(t, h); len(got) != 0 {
			t.Fatalf("recorded %v after a retry", got)
		}
		fail = false
		if err := h.Prepare(ctx, tx("t1-1", 800)); err != nil {
			t.Fatal(err)
		}
		if _, held := s.item(t); held != 1 {
			t.Errorf("held %d, want 1", held)
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func contains(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
