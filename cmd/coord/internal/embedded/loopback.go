package embedded

import (
	"net"
	"net/url"
)

// LoopbackURLs returns a client and a peer URL on two distinct loopback
// ports that were free at the time of the call, for an etcd that only this
// machine uses (coord bench, coord conformance).
//
// Both listeners stay open until both ports are known: closed one at a
// time, the kernel may hand the same port out twice, and etcd then fails
// to bind its second listener ("address already in use").
func LoopbackURLs() (client, peer url.URL, err error) {
	var urls [2]url.URL
	for i := range urls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return url.URL{}, url.URL{}, err
		}
		defer l.Close()
		urls[i] = url.URL{Scheme: "http", Host: l.Addr().String()}
	}
	return urls[0], urls[1], nil
}
