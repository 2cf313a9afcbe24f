package console_test

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/concord-tx/concord/internal/flowcontrol"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// streamGate holds the etcd client's streams: while it is shut, what the
// member sends waits, and when it opens the streams fail, as a connection
// cut for a while does. The client's watches then resume where they got to.
type streamGate struct {
	mu   sync.Mutex
	shut chan struct{} // nil: open
}

func (g *streamGate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.shut = make(chan struct{})
}

func (g *streamGate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.shut)
	g.shut = nil
}

func (g *streamGate) wait() bool {
	g.mu.Lock()
	shut := g.shut
	g.mu.Unlock()
	if shut == nil {
		return false
	}
	<-shut
	return true
}

type gatedStream struct {
	grpc.ClientStream
	gate *streamGate
}

func (s gatedStream) RecvMsg(m any) error {
	if s.gate.wait() {
		return status.Error(codes.Unavailable, "connection cut by the test")
	}
	return s.ClientStream.RecvMsg(m)
}

// gatedClient is an etcd client whose streams the returned gate holds.
func gatedClient(t *testing.T) (*clientv3.Client, *streamGate) {
	g := &streamGate{}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   etcd.Endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
		DialOptions: append(flowcontrol.DialOptions(),
			grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
				s, err := streamer(ctx, desc, cc, method, opts...)
				return gatedStream{s, g}, err
			})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, g
}

// TestWatchReadsAgainAfterCompaction: when the console's watch resumes
// after history it missed was compacted, the console reads the records
// again (the overview counts what it missed) and drops the open pages,
// whose browsers reconnect and reload.
func TestWatchReadsAgainAfterCompaction(t *testing.T) {
	cli, gate := gatedClient(t)
	f := newFixture(t, consoleOn(cli))
	f.participant(t, "hold", silent)
	p := openPage(t, f.url+"/events", `"txs"`)
	defer p.close()
	watches := f.console.Watches()

	gate.close()
	for range 3 {
		f.begin(t, protocol.Branch{Participant: "hold", Payload: []byte(`{}`)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := etcd.Compact(ctx, f.cli); err != nil {
		t.Fatal(err)
	}
	gate.open()

	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the page's stream is still open after the watch missed compacted changes; want it dropped")
	}
	undecided := regexp.MustCompile(`id="undecided">(\d+)<`)
	h := f.http(t)
	poll.Until(t, 30*time.Second, "the overview counts the transactions begun while the watch was cut", func() (bool, string) {
		_, body := h.do("GET", "/", nil, nil)
		m := undecided.FindStringSubmatch(body)
		return m != nil && m[1] == "3", fmt.Sprintf("undecided: %v", m)
	})
	if n := f.console.Watches(); n <= watches {
		t.Errorf("%d watches opened, %d before the cut: want the watch opened again", n, watches)
	}
}
