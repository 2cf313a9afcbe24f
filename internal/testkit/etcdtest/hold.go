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

// DialOptions are what a client passes to be held (see Server.Client): its
// Range requests of the range, and its streamed ranges (RangeStream).
func (h *Hold) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{h.unary(), h.stream()}
}

func (h *Hold) unary() grpc.DialOption {
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if err := h.wait(ctx, req); err != nil {
			return err
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
}

func (h *Hold) stream() grpc.DialOption {
	return grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		return &heldStream{ClientStream: cs, h: h, ctx: ctx}, nil
	})
}

// heldStream holds a stream's request of the range before sending it.
type heldStream struct {
	grpc.ClientStream
	h   *Hold
	ctx context.Context
}

func (s *heldStream) SendMsg(m any) error {
	if err := s.h.wait(s.ctx, m); err != nil {
		return err
	}
	return s.ClientStream.SendMsg(m)
}

// wait holds req until Release if it reads the range.
func (h *Hold) wait(ctx context.Context, req any) error {
	r, ok := req.(*etcdserverpb.RangeRequest)
	if !ok {
		return nil
	}
	if end := h.end.Load(); end == nil || string(r.RangeEnd) != *end {
		return nil
	}
	h.held.Add(1)
	select {
	case <-h.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
