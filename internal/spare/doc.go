// Package spare runs short-lived functions on goroutines that stay for the
// next one.
//
// A goroutine starts with a small stack. One that sends an etcd request
// grows it through gRPC's call and protobuf's encoding, copying it each
// time it doubles, and a participant starts several such goroutines per
// transaction (a runner per message, a sender per shared batch). Kept for
// the next function, a goroutine keeps its grown stack and its start is
// paid once.
package spare
