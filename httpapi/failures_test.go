package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/participant"
)

// A committed transaction whose participant's Commit keeps failing shows,
// in GET /v1/transactions/{id}, which participant, which handler, since
// when, how many attempts and the last error.
func TestFailingCommitShown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.participant(t, "bank-a", participant.HandlerFuncs{})
	f.participant(t, "bank-b", participant.HandlerFuncs{CommitFunc: func(context.Context, participant.Tx) error {
		return errors.New("disk <full>")
	}})
	code, body := f.do(t, "POST", "/v1/transactions", `{"id":"t-fail","branches":[{"participant":"bank-a"},{"participant":"bank-b"}],"timeout":"10s"}`)
	if code != 200 || !strings.Contains(body, `"committed"`) {
		t.Fatalf("begin: %d %s", code, body)
	}
	var tx httpapi.Transaction
	poll.Until(t, 20*time.Second, "the failure shown", func() (bool, string) {
		code, body := f.do(t, "GET", "/v1/transactions/t-fail", "")
		if code != 200 {
			return false, body
		}
		tx = httpapi.Transaction{}
		if err := json.Unmarshal([]byte(body), &tx); err != nil {
			return false, err.Error()
		}
		return len(tx.Failures) == 1, body
	})
	fl := tx.Failures[0]
	if fl.Participant != "bank-b" || fl.Op != "commit" || fl.Attempts < 1 || fl.LastError != "disk <full>" || fl.Since.IsZero() {
		t.Errorf("failure: %+v, want bank-b's commit failing with its error", fl)
	}
}
