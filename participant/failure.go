package participant

import (
	"context"
	"time"

	"github.com/concord-tx/concord/internal/batch"
	"github.com/concord-tx/concord/protocol"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.uber.org/zap"
)

// failureReport is what one runner knows of the failures of the Commit or
// Abort handler of one transaction.
type failureReport struct {
	since    time.Time // first failure
	attempts int       // failed calls; the first is reported at once
	written  time.Time // when a report was last submitted
}

// reportFailure counts a failed Commit or Abort call and, at most every
// failure report interval (the first failure at once), publishes it in
// P/<id>/failure/<participant> for operators (see protocol.Failure). The
// write lands only while the record is still the decided one of this
// message (ModRevision(record) == the decision's revision), before this
// participant's acknowledgement (ModRevision(inbox) == the same) and, through the
// writer's guard, while this instance holds the registration. Nobody waits
// for it: a report that fails is logged and tried again at the next
// interval.
func (in *inbox) reportFailure(ctx context.Context, m message, f *failureReport, herr error, log *zap.Logger) {
	now := time.Now()
	f.attempts++
	if f.attempts == 1 {
		f.since = now
	}
	if !f.written.IsZero() && now.Sub(f.written) < in.p.opts.failureReport {
		return
	}
	f.written = now
	v, err := protocol.EncodeFailure(protocol.Failure{
		Participant: in.p.name,
		Op:          m.Op,
		Since:       f.since.UTC(),
		Attempts:    f.attempts,
		LastError:   herr.Error(),
		Updated:     now.UTC(),
	})
	if err != nil {
		log.Error("failure report not encoded", zap.Error(err))
		return
	}
	keys := in.p.keys
	op := batch.Op{
		Cmps: []*pb.Compare{
			batch.ModRevisionIs(keys.Record(m.id), m.mod),
			// Not acknowledged yet: a report sent after the acknowledgement
			// (which deletes any report) must not land.
			batch.ModRevisionIs(keys.Inbox(in.p.name, m.id), m.mod),
		},
		Then: []*pb.RequestOp{batch.Put(keys.Failure(m.id, in.p.name), v)},
		Lazy: true,
		Key:  m.id,
	}
	in.writer.Submit(ctx, op, func(resp *pb.TxnResponse, _ int64, err error) {
		switch {
		case err != nil:
			log.Debug("failure report not written", zap.Error(err))
		case !resp.Succeeded:
			log.Debug("failure report not written: the transaction moved on")
		}
	})
}
