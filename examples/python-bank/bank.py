#!/usr/bin/env python3
"""A bank that takes part in Concord transactions through `coord gateway`.

Standard library only. Accounts live in an SQLite file; every call is one
SQLite transaction that records (id, revision, phase) with the business
change, so a repeated call returns what the first did (PROTOCOL.md §12):

  POST /prepare  reserve the branch's moves, or refuse them (409)
  POST /commit   apply what prepare reserved
  POST /abort    release it (and remember the abort, so a late prepare is refused)
  GET  /healthz  200 while the store answers
  GET  /accounts balances, {"alice": 100, ...}

A branch payload is {"account": "alice", "amount": -10} or
{"moves": [{"account": ..., "amount": ...}, ...]}, as the Go demo bank's.
The conformance payloads of PROTOCOL.md §11 ({"vote": "no", "reason": ...},
"delay_ms") are honoured too, so the bank behind the gateway can be run
through `coord conformance`.

Every call must be signed with the shared secret (--secret-file or
$CONCORD_GATEWAY_SECRET): X-Concord-Signature = "sha256=" + hex HMAC-SHA256
over X-Concord-Timestamp + "." + body, the timestamp within 5 minutes.
"""

import argparse
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_SKEW = 300  # seconds a signed timestamp may be off


class Refused(Exception):
    """The bank says no: the vote's reason."""


class Store:
    def __init__(self, path, seed):
        self.path = path
        db = self.connect()
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, balance INTEGER NOT NULL, held INTEGER NOT NULL DEFAULT 0)")
            db.execute("CREATE TABLE IF NOT EXISTS txns (id TEXT NOT NULL, revision INTEGER NOT NULL, state TEXT NOT NULL, moves TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', PRIMARY KEY (id, revision))")
            if db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0:
                db.executemany("INSERT INTO accounts (name, balance) VALUES (?, ?)", seed.items())
        db.close()

    def connect(self):
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def txn(self, fn):
        """Runs fn(db) in one write transaction."""
        db = self.connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(db)
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return out
        finally:
            db.close()

    @staticmethod
    def find(db, tid, rev):
        """The transaction's row; revision 0 (an old coordinator's decision) matches by id."""
        if rev:
            return db.execute("SELECT revision, state, moves, reason FROM txns WHERE id = ? AND revision = ?", (tid, rev)).fetchone()
        return db.execute("SELECT revision, state, moves, reason FROM txns WHERE id = ? ORDER BY revision DESC LIMIT 1", (tid,)).fetchone()

    def prepare(self, tid, rev, moves, refuse):
        def fn(db):
            row = self.find(db, tid, rev)
            if row:
                _, state, _, reason = row
                if state in ("prepared", "committed"):
                    return "repeat"
                raise Refused(reason or "aborted before prepare")
            reason = refuse
            if not reason:
                for m in moves:
                    acc = db.execute("SELECT balance, held FROM accounts WHERE name = ?", (m["account"],)).fetchone()
                    if acc is None:
                        reason = "no account %s" % m["account"]
                        break
                    if m["amount"] < 0 and acc[0] - acc[1] < -m["amount"]:
                        reason = "insufficient funds: %s has %d available, needs %d" % (m["account"], acc[0] - acc[1], -m["amount"])
                        break
            if reason:
                db.execute("INSERT INTO txns VALUES (?, ?, 'refused', ?, ?)", (tid, rev, json.dumps(moves), reason))
                return Refused(reason)  # recorded: returned, not raised, so the row commits
            for m in moves:
                if m["amount"] < 0:
                    db.execute("UPDATE accounts SET held = held + ? WHERE name = ?", (-m["amount"], m["account"]))
            db.execute("INSERT INTO txns VALUES (?, ?, 'prepared', ?, '')", (tid, rev, json.dumps(moves)))
            return "prepared"
        out = self.txn(fn)
        if isinstance(out, Refused):
            raise out
        return out

    def commit(self, tid, rev):
        def fn(db):
            row = self.find(db, tid, rev)
            if row is None:
                raise Refused("unknown transaction %s@%d: commit without a prepare" % (tid, rev))
            r, state, moves, _ = row
            if state == "committed":
                return "repeat"
            if state != "prepared":
                raise Refused("transaction %s@%d is %s, cannot commit" % (tid, r, state))
            for m in json.loads(moves):
                if m["amount"] < 0:
                    db.execute("UPDATE accounts SET balance = balance + ?, held = held - ? WHERE name = ?", (m["amount"], -m["amount"], m["account"]))
                else:
                    db.execute("UPDATE accounts SET balance = balance + ? WHERE name = ?", (m["amount"], m["account"]))
            db.execute("UPDATE txns SET state = 'committed' WHERE id = ? AND revision = ?", (tid, r))
            return "committed"
        return self.txn(fn)

    def abort(self, tid, rev, reason):
        def fn(db):
            row = self.find(db, tid, rev)
            if row is None:
                db.execute("INSERT INTO txns VALUES (?, ?, 'aborted', '[]', ?)", (tid, rev, reason or "aborted"))
                return "aborted before prepare"
            r, state, moves, _ = row
            if state in ("aborted", "refused"):
                db.execute("UPDATE txns SET state = 'aborted' WHERE id = ? AND revision = ?", (tid, r))
                return "repeat"
            if state == "committed":
                raise Refused("transaction %s@%d committed, cannot abort" % (tid, r))
            for m in json.loads(moves):
                if m["amount"] < 0:
                    db.execute("UPDATE accounts SET held = held - ? WHERE name = ?", (-m["amount"], m["account"]))
            db.execute("UPDATE txns SET state = 'aborted', reason = ? WHERE id = ? AND revision = ?", (reason or "aborted", tid, r))
            return "released"
        return self.txn(fn)

    def accounts(self):
        db = self.connect()
        try:
            return {name: bal for name, bal in db.execute("SELECT name, balance FROM accounts ORDER BY name")}
        finally:
            db.close()


def parse_moves(payload):
    """Moves of a bank payload, or ([], refusal, delay) for a conformance payload."""
    if not isinstance(payload, dict):
        raise ValueError("payload: expected a JSON object")
    if "vote" in payload:  # PROTOCOL.md §11
        refuse = payload.get("reason") or "refused" if payload["vote"] == "no" else ""
        return [], refuse, payload.get("delay_ms", 0)
    moves = payload["moves"] if "moves" in payload else [payload]
    out = []
    for m in moves:
        if not isinstance(m.get("account"), str) or not isinstance(m.get("amount"), int) or m["amount"] == 0:
            raise ValueError("payload: each move needs an account and a non-zero integer amount")
        out.append({"account": m["account"], "amount": m["amount"]})
    return out, "", 0


class Handler(BaseHTTPRequestHandler):
    server_version = "python-bank/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    def answer(self, status, obj):
        body = json.dumps(obj, sort_keys=True).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/healthz":
            self.server.store.accounts()
            return self.answer(200, {"status": "ok"})
        if self.path == "/accounts":
            return self.answer(200, self.server.store.accounts())
        self.answer(404, {"error": "no such path %s" % self.path})

    def verified(self, body):
        secret = self.server.secret
        if not secret:
            return True
        ts = self.headers.get("X-Concord-Timestamp", "")
        sig = self.headers.get("X-Concord-Signature", "")
        want = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        try:
            fresh = abs(time.time() - int(ts)) <= MAX_SKEW
        except ValueError:
            fresh = False
        # Bytes: compare_digest refuses str with non-ASCII characters, and
        # http.server decodes headers as Latin-1.
        return fresh and hmac.compare_digest(sig.encode("latin-1"), want.encode())

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        phase = self.path.lstrip("/")
        if phase not in ("prepare", "commit", "abort"):
            return self.answer(404, {"error": "no such path %s" % self.path})
        if not self.verified(body):
            return self.answer(401, {"error": "bad or missing signature"})
        try:
            req = json.loads(body)
            tid, rev = req["id"], int(req["revision"])
        except (ValueError, KeyError) as e:
            return self.answer(400, {"error": "body: %s" % e})
        key = "%s:%d:%s" % (tid, rev, phase)
        if self.headers.get("Idempotency-Key", key) != key:
            return self.answer(400, {"error": "Idempotency-Key does not match the body (%s)" % key})
        store = self.server.store
        try:
            if phase == "prepare":
                try:
                    moves, refuse, delay = parse_moves(req.get("payload"))
                except (ValueError, KeyError, TypeError) as e:
                    moves, refuse, delay = [], "bad payload: %s" % e, 0
                if delay:
                    time.sleep(delay / 1000)
                out = store.prepare(tid, rev, moves, refuse)
            elif phase == "commit":
                gate = self.server.commit_gate
                while gate and not os.path.exists(gate):
                    time.sleep(0.05)  # testing only: hold commits until the file exists
                out = store.commit(tid, rev)
            else:
                out = store.abort(tid, rev, req.get("reason", ""))
        except Refused as e:
            self.log_message("%s %s: refused: %s", phase, key, e)
            return self.answer(409, {"reason": str(e)})
        self.log_message("%s %s: %s", phase, key, out)
        self.answer(200, {"result": out})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090, help="0 picks a free port (see --port-file)")
    ap.add_argument("--port-file", help="write the port listened on to this file")
    ap.add_argument("--db", default="bank.sqlite")
    ap.add_argument("--accounts", default="", help="opening balances of a new store: alice=100,bob=50")
    ap.add_argument("--secret-file", help="shared secret of the gateway (default $CONCORD_GATEWAY_SECRET)")
    ap.add_argument("--commit-gate", help="testing only: commits wait until this file exists")
    args = ap.parse_args()
    seed = {}
    for item in filter(None, args.accounts.split(",")):
        name, _, amount = item.partition("=")
        seed[name.strip()] = int(amount)
    secret = os.environ.get("CONCORD_GATEWAY_SECRET", "")
    if args.secret_file:
        with open(args.secret_file) as f:
            secret = f.read().strip()
    srv = ThreadingHTTPServer((args.listen, args.port), Handler)
    srv.daemon_threads = True
    srv.store = Store(args.db, seed)
    srv.secret = secret.encode()
    srv.commit_gate = args.commit_gate
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(port))
        os.replace(tmp, args.port_file)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    sys.stderr.write("python-bank listening on %s:%d, db %s, signed %s\n" % (args.listen, port, args.db, bool(secret)))
    srv.serve_forever()


if __name__ == "__main__":
    main()
