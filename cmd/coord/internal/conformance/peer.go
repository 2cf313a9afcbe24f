package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"github.com/concord-tx/concord/participant"
)

// PeerName is the participant the suite runs itself, with the Go SDK, as
// the other branch of two-branch transactions.
const PeerName = "conformance-peer"

// peer is the suite's own participant. Its Prepare answers as the payload
// asks ({"vote": "no", "reason": …}), and waits first while the suite
// holds the transaction, so that a case can order the two votes.
type peer struct {
	mu    sync.Mutex
	gates map[string]chan struct{} // transaction id → closed on release
}

func newPeer() *peer { return &peer{gates: make(map[string]chan struct{})} }

// hold makes the peer's Prepare of transaction id wait for release.
func (p *peer) hold(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gates[id] = make(chan struct{})
}

// release lets the held Prepare of id go on.
func (p *peer) release(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g, ok := p.gates[id]; ok {
		close(g)
		delete(p.gates, id)
	}
}

// releaseAll lets every held Prepare go on (at the end of the suite).
func (p *peer) releaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, g := range p.gates {
		close(g)
		delete(p.gates, id)
	}
}

func (p *peer) handler() participant.Handler {
	return participant.HandlerFuncs{PrepareFunc: p.prepare}
}

func (p *peer) prepare(ctx context.Context, tx participant.Tx) error {
	p.mu.Lock()
	g := p.gates[tx.ID]
	p.mu.Unlock()
	if g != nil {
		select {
		case <-g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var ask payload
	if err := json.Unmarshal(tx.Payload, &ask); err != nil {
		return err
	}
	if ask.Vote == "no" {
		return errors.New(ask.Reason)
	}
	return nil
}

// payload is a conformance branch payload (PROTOCOL.md §11).
type payload struct {
	Vote    string `json:"vote"`
	Reason  string `json:"reason,omitempty"`
	DelayMS int    `json:"delay_ms,omitempty"`
}

func (p payload) bytes() []byte {
	b, _ := json.Marshal(p)
	return b
}

var (
	yes = payload{Vote: "yes"}
)

func no(reason string) payload { return payload{Vote: "no", Reason: reason} }
