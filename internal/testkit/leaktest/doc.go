// Package leaktest checks that a test package leaves no goroutine running,
// allowing for the few that etcd's embedded server and gRPC keep for the
// life of the process.
package leaktest
