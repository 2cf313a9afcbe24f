package coordinator

// This file is the package's helper file: how every part of the package
// sends its etcd requests (bounded, hedged, retried, counted).

import (
	"context"
	"time"

	retrypkg "github.com/concord-tx/concord/internal/retry"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// currentRevision reads etcd's current revision, a point from which a
// watch misses nothing later reads would not see.
func currentRevision(ctx context.Context, cli *clientv3.Client, o options) (int64, error) {
	resp, err := retry(ctx, o, "get", func(ctx context.Context) (*clientv3.GetResponse, error) {
		return cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	})
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// retry runs an idempotent etcd request with the client's policy.
func retry[T any](ctx context.Context, o options, op string, f func(context.Context) (T, error)) (T, error) {
	return retrypkg.Do(ctx, policy(o, op), f)
}

func policy(o options, op string) retrypkg.Policy {
	return retrypkg.Policy{
		Timeout:    o.requestTimeout,
		HedgeAfter: retrypkg.HedgeAfter(o.requestTimeout),
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: time.Second,
		OnError: func(err error) {
			o.observer.EtcdError(op, err)
			o.logger.Debug("etcd request failed", zap.String("op", op), zap.Error(err))
		},
	}
}
