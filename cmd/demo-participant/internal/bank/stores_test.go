package bank

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/pgtest"
	"github.com/concord-tx/concord/participant"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	_ "modernc.org/sqlite"
)

// bankUnderTest is a bank on one kind of store, seen as the participant
// and the HTTP API see it.
type bankUnderTest struct {
	h    participant.Handler
	l    Ledger
	logs *observer.ObservedLogs // the handler's
}

// testLogger logs to t and to the returned observer.
func testLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())), logs
}

var storeKinds = []struct {
	name string
	open func(t *testing.T, seed map[string]int64) bankUnderTest
}{
	{"bbolt", func(t *testing.T, seed map[string]int64) bankUnderTest {
		s := newStore(t, seed)
		log, logs := testLogger(t)
		return bankUnderTest{NewHandler(s, WithLogger(log)), s, logs}
	}},
	{"sqlite", func(t *testing.T, seed map[string]int64) bankUnderTest {
		return openSQLBank(t, "sqlite", "file:"+filepath.Join(t.TempDir(), "bank.db")+"?_txlock=immediate&_busy_timeout=10000", seed)
	}},
	{"postgres", func(t *testing.T, seed map[string]int64) bankUnderTest {
		return openSQLBank(t, "pgx", pgtest.Schema(t), seed)
	}},
}

func openSQLBank(t *testing.T, driver, dsn string, seed map[string]int64) bankUnderTest {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	log, logs := testLogger(t)
	s, created, err := OpenSQL(context.Background(), db, "bank-a", seed, log)
	if err != nil || !created {
		t.Fatalf("open: created %v, %v", created, err)
	}
	t.Cleanup(func() { s.Close() })
	return bankUnderTest{s.Handler(), s, logs}
}

func forEachStore(t *testing.T, seed map[string]int64, test func(t *testing.T, b bankUnderTest)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { test(t, k.open(t, seed)) })
	}
}

func ptx(id string, rev int64, moves ...Move) participant.Tx {
	p, _ := EncodePayload(moves)
	return participant.Tx{ID: id, Revision: rev, Payload: p, Deadline: time.Now().Add(time.Minute)}
}

func (b bankUnderTest) wantAccounts(t *testing.T, want map[string]Account) {
	t.Helper()
	got, err := b.l.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("accounts %v, want %v", got, want)
	}
}

// Issue 17's overflow: two credits of 5 prepared to an account 7 short of
// the largest balance would overflow at the second's Commit, with the
// debit on the other side done. Prepare reserves the headroom, so the
// second is refused at Prepare instead.
func TestCreditHeadroomIsReserved(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, map[string]int64{"zed": 9223372036854775800}, func(t *testing.T, b bankUnderTest) {
		if err := b.h.Prepare(ctx, ptx("c1", 1, Move{"zed", 5})); err != nil {
			t.Fatal(err)
		}
		err := b.h.Prepare(ctx, ptx("c2", 2, Move{"zed", 5}))
		var refused *RefusedError
		if !errors.Is(err, ErrOverflow) && !errors.As(err, &refused) {
			t.Fatalf("second credit: %v, want a refusal for overflow", err)
		}
		if want := "balance would overflow: zed: credit of 5 would overflow its balance 9223372036854775800 with 5 already incoming"; err.Error() != want {
			t.Errorf("reason %q, want %q", err, want)
		}
		b.wantAccounts(t, map[string]Account{"zed": {9223372036854775800, 0, 5}})
		if err := b.h.Commit(ctx, ptx("c1", 1)); err != nil {
			t.Fatal(err)
		}
		if err := b.h.Abort(ctx, ptx("c2", 2)); err != nil {
			t.Fatal(err)
		}
		b.wantAccounts(t, map[string]Account{"zed": {9223372036854775805, 0, 0}})
		// Now only 2 of headroom are left.
		if err := b.h.Prepare(ctx, ptx("c3", 3, Move{"zed", 3})); err == nil {
			t.Error("a credit past the largest balance was prepared")
		}
		if err := b.h.Prepare(ctx, ptx("c4", 4, Move{"zed", 2})); err != nil {
			t.Errorf("a credit to exactly the largest balance: %v", err)
		}
	})
}

// Every store answers the same calls with the same votes, reasons,
// balances and phases.
func TestStoresBehaveAlike(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, map[string]int64{"alice": 100, "bob": 50}, func(t *testing.T, b bankUnderTest) {
		steps := []struct {
			call func() error
			want string // the error's text, "" for nil
		}{
			{func() error { return b.h.Prepare(ctx, ptx("t1", 1, Move{"alice", -60}, Move{"bob", 60})) }, ""},
			{func() error { return b.h.Prepare(ctx, ptx("t1", 1, Move{"alice", -60}, Move{"bob", 60})) }, ""},
			{func() error { return b.h.Prepare(ctx, ptx("t2", 2, Move{"alice", -50})) }, "insufficient funds: alice has 40 available (balance 100, held 60), debit of 50"},
			{func() error { return b.h.Prepare(ctx, ptx("t2", 2, Move{"alice", -50})) }, "insufficient funds: alice has 40 available (balance 100, held 60), debit of 50"},
			{func() error { return b.h.Prepare(ctx, ptx("t3", 3, Move{"carol", 5})) }, "unknown account: carol"},
			{func() error { return b.h.Prepare(ctx, participant.Tx{ID: "t4", Revision: 4, Payload: []byte("{}")}) }, `invalid payload: "account" is missing`},
			{func() error { return b.h.Abort(ctx, participant.Tx{ID: "t5", Revision: 5, Reason: "deadline"}) }, ""},
			{func() error { return b.h.Prepare(ctx, ptx("t5", 5, Move{"bob", -1})) }, "transaction already aborted"},
			{func() error { return b.h.Commit(ctx, ptx("t1", 1)) }, ""},
			{func() error { return b.h.Commit(ctx, ptx("t1", 1)) }, ""},
			{func() error { return b.h.Abort(ctx, ptx("t2", 2)) }, ""},
			{func() error { return b.h.Prepare(ctx, ptx("t6", 6, Move{"bob", -100})) }, ""},
			{func() error { return b.h.Abort(ctx, ptx("t6", 6)) }, ""},
			{func() error { return b.h.Abort(ctx, ptx("t6", 6)) }, ""},
		}
		for i, s := range steps {
			err := s.call()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != s.want {
				t.Fatalf("step %d: %q, want %q", i, got, s.want)
			}
		}
		if err := b.h.Prepare(ctx, ptx("t5", 5, Move{"bob", -1})); !errors.Is(err, ErrAlreadyAborted) {
			t.Errorf("prepare after the abort: %v, want ErrAlreadyAborted", err)
		}
		b.wantAccounts(t, map[string]Account{"alice": {40, 0, 0}, "bob": {110, 0, 0}})
		applied, err := b.l.Applied()
		if err != nil {
			t.Fatal(err)
		}
		want := "map[t1:committed t2:refused t3:refused t4:refused t5:aborted t6:aborted]"
		if fmt.Sprint(applied) != want {
			t.Errorf("applied %v, want %s", applied, want)
		}
	})
}

// Every store's handler logs each call's effect with "repeat": false
// once, and true for a call that found the effect done: what the chaos
// suite counts to find a transaction applied twice.
func TestHandlerLogsRepeats(t *testing.T) {
	ctx := context.Background()
	forEachStore(t, map[string]int64{"alice": 100}, func(t *testing.T, b bankUnderTest) {
		for _, call := range []func() error{
			func() error { return b.h.Prepare(ctx, ptx("t1", 1, Move{"alice", -10})) },
			func() error { return b.h.Prepare(ctx, ptx("t1", 1, Move{"alice", -10})) },
			func() error { return b.h.Commit(ctx, ptx("t1", 1)) },
			func() error { return b.h.Commit(ctx, ptx("t1", 1)) },
			func() error { return b.h.Prepare(ctx, ptx("t2", 2, Move{"alice", -500})) },
			func() error { return b.h.Prepare(ctx, ptx("t2", 2, Move{"alice", -500})) },
			func() error { return b.h.Abort(ctx, ptx("t2", 2)) },
			func() error { return b.h.Abort(ctx, ptx("t2", 2)) },
		} {
			call()
		}
		var got []string
		for _, e := range b.logs.All() {
			f := e.ContextMap()
			got = append(got, fmt.Sprintf("%s %v %v", e.Message, f["txid"], f["repeat"]))
		}
		want := []string{
			"prepared t1 false", "prepared t1 true", "committed t1 false", "committed t1 true",
			"prepare refused t2 false", "prepare refused t2 true", "aborted t2 true", "aborted t2 true",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("logged\n%v\nwant\n%v", got, want)
		}
	})
}
