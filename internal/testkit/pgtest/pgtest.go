// Package pgtest gives each test a schema of its own on a real PostgreSQL
// server, and drops it when the test ends. Nothing here fakes PostgreSQL.
//
// The server is the one in CONCORD_TEST_POSTGRES_URL, or else
// postgres://postgres@127.0.0.1:5432/postgres (trust authentication). On a
// machine without one the test is skipped with a line saying how to get
// it, unless CI=true, where it fails: CI always runs these tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvURL names the environment variable holding the server's URL.
const EnvURL = "CONCORD_TEST_POSTGRES_URL"

// DefaultURL is the server used when EnvURL is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns the URL of the test server.
func ServerURL() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Schema creates a schema with a random name on the test server and
// returns a URL whose connections use it (search_path), so that every
// unqualified table the test creates lands there; the schema and all it
// holds are dropped at cleanup. Without a reachable server it skips the
// test (fails it when CI=true).
func Schema(t testing.TB) string {
	t.Helper()
	admin, err := Connect(t)
	if err != nil {
		unavailable(t, err)
	}
	name := "concord_test_" + randomHex(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+name); err != nil {
		admin.Close()
		t.Fatalf("pgtest: create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("pgtest: drop schema %s: %v", name, err)
		}
	})
	u, err := url.Parse(ServerURL())
	if err != nil {
		t.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// Connect opens the test server as given and checks that it answers.
func Connect(t testing.TB) (*sql.DB, error) {
	t.Helper()
	db, err := sql.Open("pgx", ServerURL())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func unavailable(t testing.TB, err error) {
	t.Helper()
	msg := fmt.Sprintf("no PostgreSQL at %s (%v): install and start one with trust authentication for user postgres (apt-get install postgresql), or set %s", ServerURL(), err, EnvURL)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func randomHex(t testing.TB) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// Unprivileged returns schemaURL (from Schema) for a new login role that
// may use the schema but not create anything in it, and drops the role at
// cleanup: a service's user whose tables are made by someone else.
func Unprivileged(t testing.TB, schemaURL string) string {
	t.Helper()
	u, err := url.Parse(schemaURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	role := schema + "_user"
	admin, err := Connect(t)
	if err != nil {
		unavailable(t, err)
	}
	for _, s := range []string{"CREATE ROLE " + role + " LOGIN", "GRANT USAGE ON SCHEMA " + schema + " TO " + role} {
		if _, err := admin.Exec(s); err != nil {
			admin.Close()
			t.Fatalf("pgtest: %s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		defer admin.Close()
		for _, s := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := admin.Exec(s); err != nil {
				t.Errorf("pgtest: %s: %v", s, err)
			}
		}
	})
	u.User = url.User(role)
	return u.String()
}
