package main

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// shutdownGrace is how long past --shutdown-timeout `coord serve` may take
// to stop what remains once requests are done: revoke the replica's lease
// (bounded by etcd's answer), close the clients, stop the embedded etcd.
const shutdownGrace = 5 * time.Second

// boundShutdown guarantees that a signal ends the process within limit,
// whatever state it is in (starting, connecting to etcd, standby,
// serving): when ctx ends, a second signal gets its default action (exit
// at once), and if the caller has not returned by limit, the process logs
// why and exits with status 1. The watch stops when release is called.
//
// serve stops by itself in every state we know of; this is the bound for
// those we do not (a library call that ignores its context), so that an
// operator never needs kill -9.
func boundShutdown(ctx context.Context, stopSignals func(), limit time.Duration, log *zap.Logger, exit func(int)) (release func()) {
	returned := make(chan struct{})
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-returned:
			return
		case <-ctx.Done():
		}
		stopSignals()
		t := time.NewTimer(limit)
		defer t.Stop()
		select {
		case <-returned:
		case <-t.C:
			log.Error("shutdown did not finish in time; exiting now", zap.Duration("limit", limit))
			log.Sync()
			exit(1)
		}
	}()
	return func() {
		close(returned)
		<-watching
	}
}
