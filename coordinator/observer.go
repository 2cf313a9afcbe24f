package coordinator

import (
	"time"

	"github.com/concord-tx/concord/protocol"
)

// Observer receives events for metrics. Methods are called synchronously
// from the coordinator's goroutines and must not block.
type Observer interface {
	// Begun: a Client created a transaction.
	Begun(id string)
	// Decided: the leading replica saw a transaction decided while it led;
	// latency runs from the record's creation to the decision. Only the
	// leader reports, so that a sum over replicas counts each decision
	// once; decisions taken while no replica led (or found already taken
	// when a replica starts to lead) are not reported.
	Decided(id string, state protocol.State, cause protocol.Cause, latency time.Duration)
	// Active: the leading replica's count of transactions not yet terminal.
	Active(n int)
	// Recovery: the leading replica acted on n transactions (action is
	// one of Actions()).
	Recovery(action Action, n int)
	// EtcdError: an etcd request failed (op names the request).
	EtcdError(op string, err error)
}

// NopObserver ignores every event; embed it to implement only some methods.
type NopObserver struct{}

func (NopObserver) Begun(string)                                                  {}
func (NopObserver) Decided(string, protocol.State, protocol.Cause, time.Duration) {}
func (NopObserver) Active(int)                                                    {}
func (NopObserver) Recovery(Action, int)                                          {}
func (NopObserver) EtcdError(string, error)                                       {}
