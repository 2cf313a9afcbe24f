package embedded

import (
	"net"
	"net/url"
)

// LoopbackURLs returns a client and a peer URL on loopback ports that were
// free at the time of the call, for an etcd that only this machine uses
// (coord bench, coord conformance).
func LoopbackURLs() (client, peer url.URL, err error) {
	var urls [2]url.URL
	for i := range urls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return url.URL{}, url.URL{}, err
		}
		urls[i] = url.URL{Scheme: "http", Host: l.Addr().String()}
		l.Close()
	}
	return urls[0], urls[1], nil
}
