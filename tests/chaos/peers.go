package chaos

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Raft traffic between etcd members goes through peer proxies: each member
// listens on its real peer address and advertises its proxy's address
// (--initial-advertise-peer-urls, --initial-cluster), so every connection
// a member accepts from a peer passes through its proxy.
//
// Holding that proxy alone is not a partition. etcd's rafthttp sends a
// member's messages to a peer on streams the PEER dialed (GET
// /raft/stream/...), so member i hears its peers on the streams it dialed
// to their proxies: with only i's proxy held, a follower i kept applying
// every write the others committed and kept naming the leader for as long
// as we looked (12s); only its own messages stopped. (Nor would that
// last: the stream dialers have no read timeout, since the DialContext of
// etcd's transport takes precedence over its timeout dialer, but once the
// proxy's buffers fill, the accepting side's 5s write timeout breaks i's
// streams, and i sends through POSTs it dials itself, the pipeline,
// through its peers' proxies. Lease renewals and version checks are POSTs
// and GETs too.)
//
// So each peer proxy also names the member that dialed each connection it
// accepts (from the kernel's socket table: the connection's source port is
// one of the members' sockets), and a cut holds bytes by direction between
// members, whichever side dialed: at the proxy in front of member t, on a
// connection dialed by member d, the bytes going up are d's to t and the
// bytes going down are t's to d.
// CutPeers sets HoldFrom and HoldTo on every peer proxy accordingly.

// PeerCut says which direction of a member's traffic with its peers a cut
// holds.
type PeerCut int

const (
	// CutBoth holds everything between the member and its peers: a
	// partition.
	CutBoth PeerCut = iota
	// CutOut holds the member's bytes to its peers: they no longer hear
	// it (its heartbeats, votes, acknowledgements, forwarded proposals);
	// it still hears them on the connections that stay open.
	CutOut
	// CutIn holds its peers' bytes to the member: it no longer hears
	// them; they still hear it.
	CutIn
)

func (c PeerCut) String() string {
	switch c {
	case CutBoth:
		return "both ways"
	case CutOut:
		return "its bytes to its peers held (they do not hear it)"
	case CutIn:
		return "its peers' bytes to it held (it does not hear them)"
	}
	return fmt.Sprintf("PeerCut(%d)", int(c))
}

// CutPeers holds m's traffic with every other member in the directions cut
// says, on connections open and to come, until HealPeers. Bytes are held,
// not dropped: what was held is delivered at the heal on the connections
// still open (as TCP retransmits after a route comes back).
func (c *Cluster) CutPeers(m *Member, cut PeerCut) {
	var others []string
	for _, x := range c.Members {
		if x != m {
			others = append(others, x.Name)
		}
	}
	out, in := cut != CutIn, cut != CutOut
	for _, x := range c.Members {
		var f LinkFaults
		if x == m {
			// Connections the others dialed to m: up is theirs to m,
			// down is m's to them.
			if in {
				f.HoldFrom = others
			}
			if out {
				f.HoldTo = others
			}
		} else {
			// Connections m dialed to x: up is m's to x, down is x's to m.
			if out {
				f.HoldFrom = []string{m.Name}
			}
			if in {
				f.HoldTo = []string{m.Name}
			}
		}
		x.PeerProxy.Set(f)
	}
}

// HealPeers lifts every cut between members.
func (c *Cluster) HealPeers() {
	for _, m := range c.Members {
		if m.PeerProxy != nil {
			m.PeerProxy.Set(LinkFaults{})
		}
	}
}

// PeerStats sums the peer proxies' counters.
func (c *Cluster) PeerStats() ProxyStats {
	var s ProxyStats
	for _, m := range c.Members {
		if m.PeerProxy == nil {
			continue
		}
		p := m.PeerProxy.Stats()
		s.Conns += p.Conns
		s.HeldByPartition += p.HeldByPartition
		s.Unnamed += p.Unnamed
	}
	return s
}

// dialer names the member whose socket dialed conn, an accepted
// connection: the kernel's table of TCP sockets gives the inode of the
// socket at conn's remote end, and that inode is among the open files of
// exactly one process. "" if no member owns it (it closed meanwhile).
func (c *Cluster) dialer(conn net.Conn) string {
	// The dialer's socket is local at conn's remote end, and the other
	// way round.
	theirs, ok1 := conn.RemoteAddr().(*net.TCPAddr)
	ours, ok2 := conn.LocalAddr().(*net.TCPAddr)
	if !ok1 || !ok2 {
		return ""
	}
	inode := socketInode(theirs, ours)
	if inode == "" {
		return ""
	}
	for _, m := range c.Members {
		if pid := m.Pid(); pid != 0 && holdsSocket(pid, inode) {
			return m.Name
		}
	}
	return ""
}

// holdsSocket reports whether process pid has the socket inode open.
func holdsSocket(pid int, inode string) bool {
	want := "socket:[" + inode + "]"
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		if l, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && l == want {
			return true
		}
	}
	return false
}

// socketInode finds, in /proc/net/tcp (or tcp6), the socket whose local
// address is local and remote address remote, and returns its inode.
func socketInode(local, remote *net.TCPAddr) string {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		v6 := strings.HasSuffix(table, "6")
		l, r := procAddr(local, v6), procAddr(remote, v6)
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
			fs := strings.Fields(sc.Text())
			if len(fs) >= 10 && fs[1] == l && fs[2] == r {
				f.Close()
				return fs[9]
			}
		}
		f.Close()
	}
	return ""
}

// procAddr writes an address as /proc/net/tcp does: the IP's bytes as
// native-endian 32-bit words in hex (little-endian here), then the port.
func procAddr(a *net.TCPAddr, v6 bool) string {
	ip := a.IP.To4()
	if v6 {
		ip = a.IP.To16()
	} else if ip == nil {
		return ""
	}
	var b strings.Builder
	for i := 0; i+4 <= len(ip); i += 4 {
		fmt.Fprintf(&b, "%02X%02X%02X%02X", ip[i+3], ip[i+2], ip[i+1], ip[i])
	}
	fmt.Fprintf(&b, ":%04X", a.Port)
	return b.String()
}
