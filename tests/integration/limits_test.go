package integration

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/protocol"
)

// The default limits admit what a begin Txn can carry, and a begin that
// passes raised limits but would write more than a batch carries is refused
// as invalid, writing nothing.
func TestBeginSizeLimits(t *testing.T) {
	e := newEnv(t)
	payload := bytes.Repeat([]byte("x"), protocol.DefaultMaxPayload)
	var most []protocol.Branch // the default total payload, in full branches
	for i := range protocol.DefaultMaxTotalPayload / protocol.DefaultMaxPayload {
		most = append(most, protocol.Branch{Participant: fmt.Sprintf("participant-with-a-long-name-%02d", i), Payload: payload})
	}
	b, err := e.c.Begin(e.ctx, coordinator.Request{ID: "most", Branches: most})
	if err != nil || !b.Created {
		t.Fatalf("begin with %d branches of %d bytes: %+v %v", len(most), len(payload), b, err)
	}
	if tx, err := e.c.Get(e.ctx, "most"); err != nil || len(tx.Branches) != len(most) || tx.State != protocol.StatePreparing {
		t.Fatalf("after begin: %+v %v", tx, err)
	}

	limits := protocol.DefaultLimits()
	limits.MaxTotalPayload = 4 << 20
	c, err := coordinator.NewClient(e.ctx, e.cli, coordinator.WithLimits(limits))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var over []protocol.Branch
	for i := range 16 {
		over = append(over, protocol.Branch{Participant: fmt.Sprintf("p%d", i), Payload: payload})
	}
	_, err = c.Begin(e.ctx, coordinator.Request{ID: "over", Branches: over})
	if !errors.Is(err, coordinator.ErrInvalidRequest) || !errors.Is(err, protocol.ErrPayloadTooLarge) {
		t.Fatalf("16 branches of 64 KiB: %v, want ErrInvalidRequest and ErrPayloadTooLarge", err)
	}
	if _, err := e.c.Get(e.ctx, "over"); !errors.Is(err, coordinator.ErrNotFound) {
		t.Errorf("refused begin wrote its record: %v", err)
	}
}

// A closed Client says so in a way callers can test.
func TestBeginAfterClose(t *testing.T) {
	e := newEnv(t)
	e.c.Close()
	for name, call := range map[string]func() error{
		"Begin": func() error { _, err := e.c.Begin(e.ctx, coordinator.Request{Branches: branches("a")}); return err },
		"Do":    func() error { _, err := e.c.Do(e.ctx, coordinator.Request{Branches: branches("a")}); return err },
	} {
		if err := call(); !errors.Is(err, coordinator.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if keys := e.keys(); len(keys) != 0 {
		t.Errorf("closed client wrote %v", keys)
	}
}
