package etcdtest

import (
	"context"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
)

// Hold holds a client's range reads of one range (those whose range end
// is the one set with Range) until Release, and counts them: a test can
// then see what a component does before such a read answers.
type Hold struct {
	end     atomic.Pointer[string]
	held    atomic.Int64
	release chan struct{}
	once    sync.Once
}

// NewHold returns a Hold that holds nothing until Range is called.
func NewHold() *Hold { return &Hold{release: make(chan struct{})} }

// Range sets the range end of the reads to hold.
func (h *Hold) Range(end string) { h.end.Store(&end) }

// Held is how many reads have been held so far (released or not).
func (h *Hold) Held() int64 { return h.held.Load() }

// Release lets every held read, and every later one, go on.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// DialOption is what a client passes to be held (see Server.Client).
func (h *Hold) DialOption() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if r, ok := req.(*etcdserverpb.RangeRequest); ok {
			if end := h.end.Load(); end != nil && string(r.RangeEnd) == *end {
				h.held.Add(1)
				select {
				case <-h.release:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}
