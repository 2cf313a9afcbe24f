// Package etcdtest starts a real etcd server in-process for tests, on random
// free loopback ports and in a temporary directory, so tests can run in
// parallel. Nothing here fakes etcd.
package etcdtest
