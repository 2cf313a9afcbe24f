package chaos

import (
	"net"
	"os"
	"testing"
)

// TestSocketInodeFindsTheDialer: the socket at the far end of an accepted
// connection is found in the kernel's table and among the dialer's open
// files (here the dialer is this process), which is how a peer proxy
// names the member that dialed it.
func TestSocketInodeFindsTheDialer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	in, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	inode := socketInode(in.RemoteAddr().(*net.TCPAddr), in.LocalAddr().(*net.TCPAddr))
	if inode == "" {
		t.Fatalf("no socket %v→%v in /proc/net/tcp", in.RemoteAddr(), in.LocalAddr())
	}
	if !holdsSocket(os.Getpid(), inode) {
		t.Fatalf("socket inode %s of %v is not among this process's files", inode, out.LocalAddr())
	}
	if holdsSocket(os.Getppid(), inode) {
		t.Fatalf("socket inode %s found among the parent's files too", inode)
	}
	// The accepted side is another socket, with another inode.
	if mine := socketInode(in.LocalAddr().(*net.TCPAddr), in.RemoteAddr().(*net.TCPAddr)); mine == inode || mine == "" {
		t.Fatalf("accepted side's inode %q, dialer's %q", mine, inode)
	}
}
