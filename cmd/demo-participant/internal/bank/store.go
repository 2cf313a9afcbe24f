// Package bank is the demo bank: accounts in an embedded bbolt store, and a
// participant handler that reserves, applies and releases money for
// Concord transactions.
//
// Every handler call is one bbolt transaction that changes the accounts and
// the transaction's record (its phase and moves) together, so a crash
// leaves either both or neither, and a repeated call finds the record and
// returns what the first call did.
package bank

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bucket names and the format version of the store.
var (
	bucketAccounts = []byte("accounts")
	bucketTxs      = []byte("txs")
	bucketMeta     = []byte("meta")
	keyFormat      = []byte("format")
)

const storeFormat = "1"

// Record is what the bank keeps about one transaction.
type Record struct {
	// Revision is the coordinator's revision that began the transaction
	// (participant.Tx.Revision): the coordinator keeps an id unique only
	// for its retention window, after which the id may name a new
	// transaction. 0 in records written before it was kept.
	Revision int64     `json:"revision,omitempty"`
	Phase    Phase     `json:"phase"`
	Moves    []Move    `json:"moves,omitempty"`
	Reason   string    `json:"reason,omitempty"` // refusal or abort reason
	Code     string    `json:"code,omitempty"`   // refusal kind, see refusalCodes
	Updated  time.Time `json:"updated"`
}

// Result says what a handler call found and left.
type Result struct {
	Phase  Phase // the phase recorded now
	Repeat bool  // the call found the phase already recorded and changed nothing
}

// refusalCodes name the refusal sentinels in stored records.
var refusalCodes = map[string]error{
	"insufficient_funds": ErrInsufficientFunds,
	"overflow":           ErrOverflow,
	"unknown_account":    ErrUnknownAccount,
	"invalid_payload":    ErrInvalidPayload,
	"already_aborted":    ErrAlreadyAborted,
}

// Store is the bank's durable state. It is safe for concurrent use; bbolt
// runs one writing transaction at a time.
type Store struct {
	db *bolt.DB
}

// Open opens or creates the store at path. A new store is seeded with the
// opening balances; an existing one keeps its own and ignores them
// (created tells which). If another process holds the file it fails
// after lockTimeout with ErrInUse, naming that process if it can.
func Open(path string, opening map[string]int64, lockTimeout time.Duration) (s *Store, created bool, err error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolt.ErrTimeout) {
		holder := lockHolder(path)
		if holder == "" {
			holder = "another process"
		}
		return nil, false, fmt.Errorf("bank: %s is in use by %s (locked for %v); stop that bank or give this one another --db: %w", path, holder, lockTimeout, ErrInUse)
	}
	if err != nil {
		return nil, false, fmt.Errorf("bank: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if f := string(meta.Get(keyFormat)); f != storeFormat {
				return fmt.Errorf("%w: format %q, expected %q", ErrCorrupt, f, storeFormat)
			}
			if tx.Bucket(bucketAccounts) == nil || tx.Bucket(bucketTxs) == nil {
				return fmt.Errorf("%w: missing buckets", ErrCorrupt)
			}
			return nil
		}
		created = true
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(storeFormat)); err != nil {
			return err
		}
		if _, err := tx.CreateBucket(bucketTxs); err != nil {
			return err
		}
		accounts, err := tx.CreateBucket(bucketAccounts)
		if err != nil {
			return err
		}
		for name, balance := range opening {
			if err := ValidateAccount(name); err != nil {
				return err
			}
			if balance < 0 {
				return fmt.Errorf("%w: %s: opening balance %d is negative", ErrInvalidAccount, name, balance)
			}
			if err := putJSON(accounts, name, Account{Balance: balance}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, false, fmt.Errorf("bank: open %s: %w", path, err)
	}
	return &Store{db: db}, created, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// earlier reports whether r, stored under a transaction's id, is of an
// earlier transaction with that id than the one begun at rev (the
// coordinator reuses an id after its retention window), and later whether
// it is of a later one. A caller without a revision (0) matches any record.
// A record from before revisions were kept (0) is of an earlier
// transaction only if committed: nothing follows this bank's own commit of
// a transaction.
func (r Record) earlier(rev int64) bool {
	if r.Revision == 0 {
		return rev != 0 && r.Phase == PhaseCommitted
	}
	return rev != 0 && r.Revision < rev
}

func (r Record) later(rev int64) bool { return rev != 0 && r.Revision > rev }

// recordOf reads the record of transaction id, begun at revision rev, for
// Prepare and Abort. A record of an earlier transaction with that id is
// retired: found is false, and if that transaction is still prepared here
// its holds are given back. It was aborted: the coordinator deletes a
// transaction only once it is terminal, a commit needs this bank's yes
// vote, and a transaction this bank voted yes in waits for this bank's
// acknowledgement before it can be terminal. So this bank never voted in
// it. later says the record is of a later transaction; the caller leaves
// it alone.
func recordOf(txs, accounts *bolt.Bucket, id string, rev int64) (rec Record, found, later bool, err error) {
	rec, found, err = getRecord(txs, id)
	switch {
	case err != nil || !found:
		return rec, found, false, err
	case rec.later(rev):
		return rec, true, true, nil
	case rec.earlier(rev):
		if rec.Phase == PhasePrepared {
			if err := release(accounts, rec.Moves); err != nil {
				return rec, true, false, err
			}
		}
		return Record{}, false, false, nil
	}
	return rec, true, false, nil
}

// Prepare reserves the moves of transaction id, begun at revision rev: it
// checks that every account exists, that every debit is covered by the
// balance minus what is already held and that every credit fits with the
// credits already prepared, then reserves both and records the
// transaction as prepared. A refusal is recorded too (phase refused)
// and returned as a *RefusedError; a repeated Prepare returns what the
// first one did. A Prepare after the abort is refused with
// ErrAlreadyAborted. An id whose record is of an earlier transaction
// (begun at an earlier revision) is a new transaction: the earlier one's
// holds, if any, are released first. A record of a later transaction
// refuses it with ErrIDInUse.
func (s *Store) Prepare(id string, rev int64, payload []byte) (Result, error) {
	var res Result
	var refusal *RefusedError
	err := s.db.Update(func(tx *bolt.Tx) error {
		res, refusal = Result{}, nil
		txs, accounts := tx.Bucket(bucketTxs), tx.Bucket(bucketAccounts)
		rec, found, later, err := recordOf(txs, accounts, id, rev)
		if err != nil {
			return err
		}
		if later {
			// Not recorded: the record is the later transaction's.
			refusal = &RefusedError{Reason: fmt.Sprintf("%v: %s is recorded here as the transaction begun at revision %d, later than this one (%d)", ErrIDInUse, id, rec.Revision, rev), err: ErrIDInUse}
			res = Result{Phase: PhaseRefused}
			return nil
		}
		if found {
			res = Result{Phase: rec.Phase, Repeat: true}
			switch rec.Phase {
			case PhasePrepared, PhaseCommitted:
			case PhaseAborted:
				refusal = &RefusedError{Reason: ErrAlreadyAborted.Error(), err: ErrAlreadyAborted}
			case PhaseRefused:
				refusal = &RefusedError{Reason: rec.Reason, err: refusalCodes[rec.Code]}
			}
			return nil
		}
		moves, err := ParsePayload(payload)
		if err == nil {
			err = reserve(accounts, moves)
		}
		if err != nil {
			if !isRefusal(err) {
				return err
			}
			refusal = &RefusedError{Reason: err.Error(), err: err}
			res = Result{Phase: PhaseRefused}
			return putJSON(txs, id, Record{Revision: rev, Phase: PhaseRefused, Moves: moves, Reason: err.Error(), Code: codeOf(err), Updated: now()})
		}
		res = Result{Phase: PhasePrepared}
		return putJSON(txs, id, Record{Revision: rev, Phase: PhasePrepared, Moves: moves, Updated: now()})
	})
	if err != nil {
		return Result{}, fmt.Errorf("bank: prepare %s: %w", id, err)
	}
	if refusal != nil {
		return res, refusal
	}
	return res, nil
}

// release gives back what a prepared transaction's moves reserve.
func release(accounts *bolt.Bucket, moves []Move) error {
	for _, m := range moves {
		a, found, err := getAccount(accounts, m.Account)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: account %s of a prepared transaction is gone", ErrCorrupt, m.Account)
		}
		if err := putJSON(accounts, m.Account, a.release(m.Amount)); err != nil {
			return err
		}
	}
	return nil
}

// reserve checks moves against the accounts and reserves them: the
// debits' funds and the credits' headroom (see Account.reserve).
func reserve(accounts *bolt.Bucket, moves []Move) error {
	loaded := make([]Account, len(moves))
	for i, m := range moves {
		a, found, err := getAccount(accounts, m.Account)
		if err != nil {
			return err
		}
		if !found {
			return fmt.Errorf("%w: %s", ErrUnknownAccount, m.Account)
		}
		if loaded[i], err = a.reserve(m.Account, m.Amount); err != nil {
			return err
		}
	}
	for i, m := range moves {
		if err := putJSON(accounts, m.Account, loaded[i]); err != nil {
			return err
		}
	}
	return nil
}

// Commit applies prepared transaction id, begun at revision rev: debits
// leave both the balance and the holds, credits join the balance. A
// repeated Commit changes nothing. Committing a transaction this bank did
// not prepare is ErrNotPrepared.
func (s *Store) Commit(id string, rev int64) (Result, error) {
	var res Result
	err := s.db.Update(func(tx *bolt.Tx) error {
		txs, accounts := tx.Bucket(bucketTxs), tx.Bucket(bucketAccounts)
		rec, found, err := getRecord(txs, id)
		switch {
		case err != nil:
			return err
		case !found:
			return fmt.Errorf("%w: no record of it", ErrNotPrepared)
		case rec.earlier(rev), rec.later(rev):
			return fmt.Errorf("%w: its record is of the transaction begun at revision %d, not %d", ErrNotPrepared, rec.Revision, rev)
		case rec.Phase == PhaseCommitted:
			res = Result{Phase: PhaseCommitted, Repeat: true}
			return nil
		case rec.Phase != PhasePrepared:
			return fmt.Errorf("%w: it is %v", ErrNotPrepared, rec.Phase)
		}
		for _, m := range rec.Moves {
			a, found, err := getAccount(accounts, m.Account)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("%w: account %s of a prepared transaction is gone", ErrCorrupt, m.Account)
			}
			if a, err = a.apply(m.Account, m.Amount); err != nil {
				return err
			}
			if err := putJSON(accounts, m.Account, a); err != nil {
				return err
			}
		}
		rec.Phase, rec.Updated = PhaseCommitted, now()
		res = Result{Phase: PhaseCommitted}
		return putJSON(txs, id, rec)
	})
	if err != nil {
		return Result{}, fmt.Errorf("bank: commit %s: %w", id, err)
	}
	return res, nil
}

// Abort releases the holds of transaction id, begun at revision rev, if it
// was prepared, and records the abort, so that a late Prepare is refused.
// It may come first, with no Prepare before it. A repeated Abort, or one
// after a refusal, changes nothing. Aborting a committed transaction is
// ErrAlreadyCommitted.
func (s *Store) Abort(id string, rev int64, reason string) (Result, error) {
	var res Result
	err := s.db.Update(func(tx *bolt.Tx) error {
		txs, accounts := tx.Bucket(bucketTxs), tx.Bucket(bucketAccounts)
		rec, found, later, err := recordOf(txs, accounts, id, rev)
		if err != nil {
			return err
		}
		if later {
			// Never prepared here: the record is the later transaction's.
			res = Result{Phase: PhaseAborted}
			return nil
		}
		if found {
			switch rec.Phase {
			case PhaseAborted, PhaseRefused:
				res = Result{Phase: rec.Phase, Repeat: true}
				return nil
			case PhaseCommitted:
				return ErrAlreadyCommitted
			}
			if err := release(accounts, rec.Moves); err != nil {
				return err
			}
		}
		rec.Phase, rec.Reason, rec.Updated = PhaseAborted, reason, now()
		if rec.Revision == 0 {
			rec.Revision = rev
		}
		res = Result{Phase: PhaseAborted}
		return putJSON(txs, id, rec)
	})
	if err != nil {
		return Result{}, fmt.Errorf("bank: abort %s: %w", id, err)
	}
	return res, nil
}

// Accounts returns every account, by name.
func (s *Store) Accounts() (map[string]Account, error) {
	out := make(map[string]Account)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAccounts).ForEach(func(k, v []byte) error {
			var a Account
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("%w: account %s: %v", ErrCorrupt, k, err)
			}
			out[string(k)] = a
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bank: read accounts: %w", err)
	}
	return out, nil
}

// Applied returns the phase recorded for every transaction, by id.
func (s *Store) Applied() (map[string]Phase, error) {
	out := make(map[string]Phase)
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTxs).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: transaction %s: %v", ErrCorrupt, k, err)
			}
			out[string(k)] = r.Phase
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("bank: read transactions: %w", err)
	}
	return out, nil
}

// Record returns what the bank keeps about transaction id.
func (s *Store) Record(id string) (Record, bool, error) {
	var rec Record
	var found bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, found, err = getRecord(tx.Bucket(bucketTxs), id)
		return err
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("bank: read transaction %s: %w", id, err)
	}
	return rec, found, nil
}

func isRefusal(err error) bool { return codeOf(err) != "" }

func codeOf(err error) string {
	for code, sentinel := range refusalCodes {
		if errors.Is(err, sentinel) {
			return code
		}
	}
	return ""
}

func getRecord(b *bolt.Bucket, id string) (Record, bool, error) {
	var r Record
	found, err := getJSON(b, id, &r)
	if err == nil && found && !r.Phase.Valid() {
		err = fmt.Errorf("%w: transaction %s has phase %v", ErrCorrupt, id, r.Phase)
	}
	return r, found, err
}

func getAccount(b *bolt.Bucket, name string) (Account, bool, error) {
	var a Account
	found, err := getJSON(b, name, &a)
	return a, found, err
}

func getJSON(b *bolt.Bucket, key string, v any) (bool, error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

func now() time.Time { return time.Now().UTC() }
