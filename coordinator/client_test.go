package coordinator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/protocol"
)

// When etcd does not answer (here: the client's only member takes every
// request and never answers), Begin and Do fail with the outcome unknown;
// they still return the transaction's generated id, so that the caller can
// wait for it or try it again under the same id. Refused input returns no
// id: nothing was written.
func TestUnknownOutcomeKeepsID(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	c, err := NewClient(context.Background(), cli, WithRequestTimeout(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	branches := []protocol.Branch{{Participant: "a"}, {Participant: "b"}}
	if b, err := c.Begin(context.Background(), Request{}); !errors.Is(err, ErrInvalidRequest) || b.ID != "" {
		t.Fatalf("begin with no branches: %+v %v, want ErrInvalidRequest and no id", b, err)
	}
	if _, err := c.Wait(context.Background(), "no spaces"); !errors.Is(err, ErrInvalidRequest) {
		t.Fatalf("wait on an invalid id: %v, want ErrInvalidRequest", err)
	}
	if _, err := c.List(context.Background(), ListOptions{State: protocol.StateCommitting, Unfinished: true}); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "unfinished") {
		t.Fatalf("list with a state and unfinished: %v, want ErrInvalidRequest naming both", err)
	}
	// From here every request goes to a member that never answers.
	cli.SetEndpoints(etcdtest.SilentMember(t))

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	b, err := c.Begin(ctx, Request{Branches: branches})
	if err == nil || errors.Is(err, ErrInvalidRequest) || protocol.ValidateID(b.ID) != nil {
		t.Fatalf("begin with no answer: %+v %v, want an error and the generated id", b, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	out, err := c.Do(ctx, Request{Branches: branches})
	if err == nil || protocol.ValidateID(out.ID) != nil || out.ID == b.ID {
		t.Fatalf("do with no answer: %+v %v, want an error and a new generated id", out, err)
	}
}
