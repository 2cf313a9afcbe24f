package chaos

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2/hpack"
)

// LinkFaults are the faults a Proxy applies to the connections through it.
// The zero value forwards everything as it comes.
type LinkFaults struct {
	// Partition holds every byte, both ways, until the partition is
	// lifted: the peers see silence, as behind a dropped route, and TCP's
	// retransmission delivers what was held once the link heals (unless a
	// peer gave up and closed the connection meanwhile).
	Partition bool
	// Latency is added to every frame in each direction, plus a uniformly
	// random Jitter.
	Latency time.Duration
	Jitter  time.Duration
	// DropRate is the probability, per frame forwarded, that the
	// connection is reset: the loss a transport cannot hide.
	DropRate float64
	// LoseResponseRate is the probability, per answer to a mutating etcd
	// request (KV Txn, Put, DeleteRange), that the connection is cut just
	// before the answer is forwarded. etcd has applied the request; the
	// caller sees an error: the outcome-unknown case.
	LoseResponseRate float64
	// HoldFrom holds, like Partition but in one direction only, the bytes
	// a connection carries from its dialer to the target when the proxy
	// named the dialer one of these (a peer proxy names each connection by
	// the etcd member that dialed it); HoldTo holds the target's bytes to
	// such a dialer. A connection whose dialer the proxy could not name is
	// held by either as soon as it is not empty.
	HoldFrom, HoldTo []string
}

// ProxyStats counts what a proxy did.
type ProxyStats struct {
	Conns           int64 // connections accepted
	Drops           int64 // connections reset by DropRate
	LostResponses   int64 // answers to applied mutations cut by LoseResponseRate
	MutationsSeen   int64 // answers to mutating requests seen
	UnparsedConns   int64 // connections whose HTTP/2 framing could not be followed
	HeldByPartition int64 // frames held back by a partition (or HoldFrom, HoldTo)
	Unnamed         int64 // connections whose dialer a peer proxy could not name
}

// mutating are the gRPC methods whose answer LoseResponseRate may cut.
var mutating = map[string]bool{
	"/etcdserverpb.KV/Txn":         true,
	"/etcdserverpb.KV/Put":         true,
	"/etcdserverpb.KV/DeleteRange": true,
}

// Proxy is a TCP proxy between one client process and one etcd member. It
// follows the HTTP/2 framing of gRPC so that it can tell which answer
// belongs to which request; bytes are forwarded unchanged. A peer proxy
// (NewPeerProxy) stands in front of a member's peer port instead: it
// forwards raft's HTTP/1.1 as raw bytes and names the member that dialed
// each connection, so that faults can hold one member's traffic.
type Proxy struct {
	Name   string
	target string
	ln     net.Listener
	raw    bool                  // no framing to follow: forward chunks as they come
	dialer func(net.Conn) string // names the dialer of an accepted connection
	wg     sync.WaitGroup
	stats  struct{ conns, drops, lost, mutations, unparsed, held, unnamed atomic.Int64 }

	mu struct {
		sync.Mutex
		faults  LinkFaults
		changed chan struct{} // closed, and replaced, whenever faults change
		rng     *rand.Rand
		links   map[*link]struct{}
		closed  bool
	}
}

// NewProxy listens on a free loopback port and forwards to target.
func NewProxy(name, target string, seed uint64) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return newProxy(&Proxy{Name: name, target: target, ln: ln}, seed), nil
}

// NewPeerProxy listens on addr and forwards raw bytes to target, naming
// the dialer of every connection it accepts with dialer ("" when it cannot
// tell).
func NewPeerProxy(name, addr, target string, dialer func(net.Conn) string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	return newProxy(&Proxy{Name: name, target: target, ln: ln, raw: true, dialer: dialer}, 0), nil
}

func newProxy(p *Proxy, seed uint64) *Proxy {
	p.mu.rng = rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	p.mu.links = make(map[*link]struct{})
	p.mu.changed = make(chan struct{})
	p.wg.Add(1)
	go p.accept()
	return p
}

// Addr is the host:port clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Set replaces the faults in force. Lifting a partition releases what it
// held.
func (p *Proxy) Set(f LinkFaults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mu.faults = f
	close(p.mu.changed) // held writers look again
	p.mu.changed = make(chan struct{})
}

// Update changes the faults in force with f.
func (p *Proxy) Update(f func(*LinkFaults)) {
	p.mu.Lock()
	cur := p.mu.faults
	p.mu.Unlock()
	f(&cur)
	p.Set(cur)
}

// Faults returns the faults in force.
func (p *Proxy) Faults() LinkFaults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.faults
}

// Stats returns the counters.
func (p *Proxy) Stats() ProxyStats {
	return ProxyStats{
		Conns: p.stats.conns.Load(), Drops: p.stats.drops.Load(), LostResponses: p.stats.lost.Load(),
		MutationsSeen: p.stats.mutations.Load(), UnparsedConns: p.stats.unparsed.Load(), HeldByPartition: p.stats.held.Load(),
		Unnamed: p.stats.unnamed.Load(),
	}
}

// CutAll closes every open connection, as a restarted peer would.
func (p *Proxy) CutAll() {
	p.mu.Lock()
	links := make([]*link, 0, len(p.mu.links))
	for l := range p.mu.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.mu.closed = true
	p.mu.Unlock()
	p.Set(LinkFaults{})
	p.ln.Close()
	p.CutAll()
	p.wg.Wait()
}

// chance draws from the proxy's random source.
func (p *Proxy) chance(rate float64) bool {
	if rate <= 0 {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mu.rng.Float64() < rate
}

func (p *Proxy) delay(f LinkFaults) time.Duration {
	d := f.Latency
	if f.Jitter > 0 {
		p.mu.Lock()
		d += time.Duration(p.mu.rng.Int64N(int64(f.Jitter)))
		p.mu.Unlock()
	}
	return d
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.stats.conns.Add(1)
		var from string
		if p.dialer != nil {
			if from = p.dialer(c); from == "" {
				p.stats.unnamed.Add(1)
			}
		}
		s, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		if err != nil {
			c.Close() // the member is down: the client sees a refused connection
			continue
		}
		l := &link{p: p, from: from, client: c, server: s, streams: make(map[uint32]string), done: make(chan struct{})}
		p.mu.Lock()
		if p.mu.closed {
			p.mu.Unlock()
			c.Close()
			s.Close()
			return
		}
		p.mu.links[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(4)
		up, down := make(chan frame, 256), make(chan frame, 256)
		go l.read(c, up, true)
		go l.write(s, up, true)
		go l.read(s, down, false)
		go l.write(c, down, false)
	}
}

// link is one proxied connection.
type link struct {
	p              *Proxy
	from           string // who dialed, for a peer proxy ("" if unknown)
	client, server net.Conn
	once           sync.Once
	done           chan struct{}

	mu      sync.Mutex
	streams map[uint32]string // gRPC method per HTTP/2 stream, from the client's headers
}

type frame struct {
	b  []byte
	at time.Time // when to deliver it
	// mutation is set on the first server frame answering a mutating
	// request: the point where a response can be lost.
	mutation bool
}

func (l *link) cut() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
		l.p.mu.Lock()
		delete(l.p.mu.links, l)
		l.p.mu.Unlock()
	})
}

// read splits one direction into HTTP/2 frames (or raw chunks if it cannot
// follow the framing) and queues them for write.
func (l *link) read(c net.Conn, out chan<- frame, fromClient bool) {
	defer l.p.wg.Done()
	defer l.cut()
	r := bufio.NewReaderSize(c, 64<<10)
	send := func(fr frame) bool {
		fr.at = time.Now().Add(l.p.delay(l.p.Faults()))
		select {
		case out <- fr:
			return true
		case <-l.done:
			return false
		}
	}
	raw := func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 && !send(frame{b: append([]byte(nil), buf[:n]...)}) {
				return
			}
			if err != nil {
				return
			}
		}
	}
	if l.p.raw {
		raw()
		return
	}
	var dec *hpack.Decoder
	var path string
	if fromClient {
		preface := make([]byte, len(http2Preface))
		if _, err := io.ReadFull(r, preface); err != nil {
			return
		}
		if !send(frame{b: preface}) {
			return
		}
		if string(preface) != http2Preface {
			l.p.stats.unparsed.Add(1)
			raw()
			return
		}
		dec = hpack.NewDecoder(4096, func(f hpack.HeaderField) {
			if f.Name == ":path" {
				path = f.Value
			}
		})
	}
	var block []byte // header block being collected, and its stream
	var blockStream uint32
	answered := make(map[uint32]bool) // server side: streams whose answer started
	for {
		hdr := make([]byte, 9, 9+16<<10)
		if _, err := io.ReadFull(r, hdr); err != nil {
			return
		}
		n := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
		if n > 16<<20 {
			// Not HTTP/2 as we know it: pass the rest through unparsed.
			if !send(frame{b: hdr}) {
				return
			}
			l.p.stats.unparsed.Add(1)
			raw()
			return
		}
		b := append(hdr, make([]byte, n)...)
		if _, err := io.ReadFull(r, b[9:]); err != nil {
			return
		}
		typ, flags := b[3], b[4]
		stream := be32(b[5:9]) & 0x7fffffff
		fr := frame{b: b}
		const (
			typeData, typeHeaders, typeRST, typeContinuation = 0x0, 0x1, 0x3, 0x9
			flagEndStream, flagEndHeaders                    = 0x1, 0x4
			flagPadded, flagPriority                         = 0x8, 0x20
		)
		switch {
		case fromClient && dec != nil && (typ == typeHeaders || typ == typeContinuation):
			frag := b[9:]
			if typ == typeHeaders {
				blockStream = stream
				block = block[:0]
				pad := 0
				if flags&flagPadded != 0 && len(frag) > 0 {
					pad = int(frag[0])
					frag = frag[1:]
				}
				if flags&flagPriority != 0 && len(frag) >= 5 {
					frag = frag[5:]
				}
				if pad <= len(frag) {
					frag = frag[:len(frag)-pad]
				}
			}
			block = append(block, frag...)
			if flags&flagEndHeaders != 0 {
				path = ""
				if _, err := dec.Write(block); err != nil || dec.Close() != nil {
					dec = nil // lost track of the header table: stop interpreting
					l.p.stats.unparsed.Add(1)
				} else if path != "" {
					l.mu.Lock()
					l.streams[blockStream] = path
					l.mu.Unlock()
				}
			}
		case !fromClient && stream != 0 && (typ == typeHeaders || typ == typeData) && !answered[stream]:
			answered[stream] = true
			l.mu.Lock()
			m := l.streams[stream]
			l.mu.Unlock()
			fr.mutation = mutating[m]
		}
		if !fromClient && stream != 0 && (typ == typeRST || flags&flagEndStream != 0) {
			delete(answered, stream)
			l.mu.Lock()
			delete(l.streams, stream)
			l.mu.Unlock()
		}
		if !send(fr) {
			return
		}
	}
}

const http2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// held says whether the faults f hold the bytes going up (from the
// dialer to the target) or down.
func (l *link) held(f LinkFaults, up bool) bool {
	if f.Partition {
		return true
	}
	names := f.HoldTo
	if up {
		names = f.HoldFrom
	}
	return len(names) > 0 && (l.from == "" || slices.Contains(names, l.from))
}

// write delivers queued frames at their time, holding them while the
// proxy is partitioned (or holds this direction of the link), and applies
// the drop and lost-response faults. up says the frames go to the target.
func (l *link) write(c net.Conn, in <-chan frame, up bool) {
	defer l.p.wg.Done()
	defer l.cut()
	w := bufio.NewWriterSize(c, 64<<10)
	for {
		var fr frame
		select {
		case fr = <-in:
		case <-l.done:
			return
		}
		if d := time.Until(fr.at); d > 0 {
			if w.Flush() != nil {
				return
			}
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-l.done:
				t.Stop()
				return
			}
		}
		var f LinkFaults
		for counted := false; ; counted = true {
			l.p.mu.Lock()
			var changed chan struct{}
			f, changed = l.p.mu.faults, l.p.mu.changed
			l.p.mu.Unlock()
			if !l.held(f, up) {
				break
			}
			if w.Flush() != nil {
				return
			}
			if !counted {
				l.p.stats.held.Add(1)
			}
			select {
			case <-changed:
			case <-l.done:
				return
			}
		}
		if fr.mutation {
			l.p.stats.mutations.Add(1)
			if l.p.chance(f.LoseResponseRate) {
				l.p.stats.lost.Add(1)
				return // cut: the request was applied, its answer is lost
			}
		}
		if l.p.chance(f.DropRate) {
			l.p.stats.drops.Add(1)
			return
		}
		if _, err := w.Write(fr.b); err != nil {
			return
		}
		if len(in) == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// String describes the proxy for logs.
func (p *Proxy) String() string { return fmt.Sprintf("%s(%s→%s)", p.Name, p.Addr(), p.target) }

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
