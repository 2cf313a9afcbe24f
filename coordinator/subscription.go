package coordinator

import (
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// subscription passes a hub's watch responses to one subscriber, in order
// and without making the hub wait: responses queue until the subscriber
// takes them from out. Its goroutine ends when the hub ends the
// subscription (once the queue is drained, out closes) or the subscriber
// stops it.
type subscription struct {
	out    chan clientv3.WatchResponse
	wake   chan struct{} // a push or an end happened
	quit   chan struct{} // closed by stop
	done   chan struct{} // closed when the goroutine has ended
	remove func(*subscription)
	once   sync.Once

	mu struct {
		sync.Mutex
		queue []clientv3.WatchResponse
		ended bool
	}
}

func newSubscription(remove func(*subscription)) *subscription {
	s := &subscription{
		out:    make(chan clientv3.WatchResponse),
		wake:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		remove: remove,
	}
	go s.run()
	return s
}

func (s *subscription) push(resp clientv3.WatchResponse) {
	s.mu.Lock()
	s.mu.queue = append(s.mu.queue, resp)
	s.mu.Unlock()
	s.signal()
}

// end closes out once the subscriber has taken what is queued.
func (s *subscription) end() {
	s.mu.Lock()
	s.mu.ended = true
	s.mu.Unlock()
	s.signal()
}

func (s *subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// stop ends the subscription from the subscriber's side and waits for its
// goroutine. It may be called more than once.
func (s *subscription) stop() {
	s.once.Do(func() {
		s.remove(s)
		close(s.quit)
	})
	<-s.done
}

func (s *subscription) run() {
	defer close(s.done)
	defer close(s.out)
	for {
		s.mu.Lock()
		queue, ended := s.mu.queue, s.mu.ended
		s.mu.queue = nil
		s.mu.Unlock()
		for _, resp := range queue {
			select {
			case s.out <- resp:
			case <-s.quit:
				return
			}
		}
		if ended && len(queue) == 0 {
			return
		}
		if len(queue) > 0 {
			continue // more may have come meanwhile
		}
		select {
		case <-s.wake:
		case <-s.quit:
			return
		}
	}
}

// Changes follows the Client's one watch from now on: every change under
// the prefix with the storage limits on (the default), or, with every
// limit off, the puts of records and votes only. It costs etcd nothing
// more, so an observer in the same process (the console's chart) can keep
// following while nobody looks. Responses come in the watch's order and
// are queued rather than making the watch wait; a response whose
// CompactRevision is set says changes were missed (the Client's watch
// goes on after a compaction, from a later revision). The channel closes
// when stop is called or the Client is closed; stop waits for the
// subscription's goroutine and may be called more than once. The
// responses are shared with every other subscriber (a Replica using this
// Client among them): read them, never change them.
func (c *Client) Changes() (changes <-chan clientv3.WatchResponse, stop func()) {
	s, ok := c.hub.subscribe()
	if !ok {
		closed := make(chan clientv3.WatchResponse)
		close(closed)
		return closed, func() {}
	}
	return s.out, s.stop
}
