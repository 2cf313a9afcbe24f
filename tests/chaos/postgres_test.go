package chaos

import (
	"testing"

	"github.com/concord-tx/concord/internal/testkit/pgtest"
)

// postgresStore stands, in a scenario's Stores, for a PostgreSQL schema
// of the scenario's own: withTestStores makes one on the test server
// (pgtest: CONCORD_TEST_POSTGRES_URL or 127.0.0.1:5432; skipped without
// one, failed when CI=true) and drops it when the scenario ends.
const postgresStore = "postgres:test-schema"

// postgresBankKill: one bank on bbolt and one on PostgreSQL, with every
// kind of kill -9 aimed at the PostgreSQL bank only (at a random moment,
// after its yes vote, inside its Commit). The checks are the suite's:
// money conserved, nothing held or incoming at the end, no transaction
// applied twice (the SQL bank logs its effects as the bbolt bank does).
var postgresBankKill = Scenario{
	Name:       "postgres-bank-kill",
	Faults:     []Fault{FaultKillBank, FaultKillBankVoted, FaultKillBankCommit},
	Banks:      []string{"bank-a", "bank-b"},
	Stores:     map[string]string{"bank-b": postgresStore},
	FaultBanks: []string{"bank-b"},
}

// withTestStores returns sc with each postgresStore replaced by a new
// schema's URL.
func withTestStores(t *testing.T, sc Scenario) Scenario {
	t.Helper()
	stores := make(map[string]string, len(sc.Stores))
	for bank, s := range sc.Stores {
		if s == postgresStore {
			s = pgtest.Schema(t)
		}
		stores[bank] = s
	}
	sc.Stores = stores
	return sc
}
