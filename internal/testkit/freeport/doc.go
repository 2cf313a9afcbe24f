// Package freeport hands tests loopback addresses for servers they start
// later, often in another process.
//
// Asking the kernel for port 0 and closing the listener is not enough: that
// port comes from the ephemeral range, which is also where every outgoing
// connection on the machine takes its local port, so between the close and
// the server's bind a client socket can take it ("address already in use").
// Ports here are drawn at random from below the ephemeral range, which the
// kernel never hands to outgoing connections, and checked free by binding
// them.
//
// A port also stays reserved for the rest of the process's life, because a
// test may stop its server and start it again on the same port (a killed
// etcd member that restarts): it is never handed out twice by one process,
// and other processes using this package skip it, through a lock on the
// port's byte of a shared file that the kernel drops when the process exits.
package freeport
