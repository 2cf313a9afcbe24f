package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/otlptest"
	"github.com/concord-tx/concord/internal/testkit/poll"
	"github.com/concord-tx/concord/internal/tracing"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// traced is a deployment whose parties all record spans, synchronously,
// into one in-memory exporter.
type traced struct {
	*env
	exp *tracetest.InMemoryExporter
	tp  *sdktrace.TracerProvider
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tp.Shutdown(context.Background()) })
	return &traced{env: newEnvWith(t, "", coordinator.WithTracerProvider(tp)), exp: exp, tp: tp}
}

func (tr *traced) spans() otlptest.Spans { return otlptest.FromStubs(tr.exp.GetSpans()) }

// waitSpans polls until n spans named name are exported.
func (tr *traced) waitSpans(name string, n int) otlptest.Spans {
	tr.t.Helper()
	var got otlptest.Spans
	poll.Until(tr.t, 20*time.Second, fmt.Sprintf("%d %s spans", n, name), func() (bool, string) {
		got = tr.spans()
		return len(got.Named(name)) >= n, got.String()
	})
	return got
}

// userSpans wraps a handler the way a service would instrument its own
// work: a span per call, started from the ctx the SDK passes.
type userSpans struct {
	participant.Handler
	tp trace.TracerProvider
}

func (u userSpans) call(ctx context.Context, name string, f func(context.Context) error) error {
	ctx, span := u.tp.Tracer("user").Start(ctx, name)
	err := f(ctx)
	tracing.End(span, err)
	return err
}

func (u userSpans) Prepare(ctx context.Context, tx participant.Tx) error {
	return u.call(ctx, "user.prepare", func(ctx context.Context) error { return u.Handler.Prepare(ctx, tx) })
}

func (u userSpans) Commit(ctx context.Context, tx participant.Tx) error {
	return u.call(ctx, "user.commit", func(ctx context.Context) error { return u.Handler.Commit(ctx, tx) })
}

func (u userSpans) Abort(ctx context.Context, tx participant.Tx) error {
	return u.call(ctx, "user.abort", func(ctx context.Context) error { return u.Handler.Abort(ctx, tx) })
}

func (tr *traced) participant(name string, h participant.Handler, opts ...participant.Option) {
	tr.t.Helper()
	tr.env.participant(name, userSpans{Handler: h, tp: tr.tp}, false, append([]participant.Option{participant.WithTracerProvider(tr.tp)}, opts...)...)
}

// one returns the one span named name (with participant p, if not ""),
// failing the test otherwise.
func one(t *testing.T, ss otlptest.Spans, name, p string) otlptest.Span {
	t.Helper()
	got := ss.Named(name)
	if p != "" {
		got = got.With(string(tracing.AttrParticipant), p)
	}
	if len(got) != 1 {
		t.Fatalf("%s spans of %q: %d, want 1; all:%v", name, p, len(got), ss)
	}
	return got[0]
}

func childOf(t *testing.T, child, parent otlptest.Span) {
	t.Helper()
	if child.ParentID != parent.SpanID || child.TraceID != parent.TraceID {
		t.Errorf("%v is not a child of %v", child, parent)
	}
}

// A committed and an aborted transaction each give one trace: the
// caller's span holds the initiator's Do, which holds Begin; each
// participant's Prepare and Commit (or Abort) are children of Begin,
// continued from the record, with the handler's own spans and the vote
// or acknowledgement under them.
func TestTraceOfTransaction(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refuse  bool // b votes no
		outcome protocol.State
		apply   string // the participants' span for the decision
		user    string
	}{
		{"committed", false, protocol.StateCommitted, tracing.SpanCommit, "user.commit"},
		{"aborted", true, protocol.StateAborted, tracing.SpanAbortBranch, "user.abort"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTraced(t)
			ra, rb := newRecorder("a"), newRecorder("b")
			id := "tx-" + tc.name
			logCore, logs := observer.New(zap.DebugLevel)
			tr.participant("a", ra, participant.WithLogger(zap.New(logCore)))
			if tc.refuse {
				// b votes no only once a's yes is written, so that both
				// prepare and vote.
				rb.refuse[id] = errors.New("insufficient funds")
				aVote := protocol.DefaultKeys().Vote(id, "a")
				tr.participant("b", participant.HandlerFuncs{
					PrepareFunc: func(ctx context.Context, tx participant.Tx) error {
						resp, err := tr.cli.Get(ctx, aVote)
						if err != nil {
							return err
						}
						if len(resp.Kvs) == 0 {
							wctx, cancel := context.WithCancel(ctx)
							defer cancel()
							for wr := range tr.cli.Watch(wctx, aVote, clientv3.WithRev(resp.Header.Revision+1)) {
								if len(wr.Events) > 0 {
									break
								}
							}
							if ctx.Err() != nil {
								return ctx.Err()
							}
						}
						return rb.Prepare(ctx, tx)
					},
					CommitFunc: rb.Commit, AbortFunc: rb.Abort,
				})
			} else {
				tr.participant("b", rb)
			}

			ctx, caller := tr.tp.Tracer("test").Start(tr.ctx, "caller")
			out, err := tr.c.Do(ctx, coordinator.Request{ID: id, Branches: branches("a", "b"), Timeout: 10 * time.Second})
			caller.End()
			if err != nil || out.State != tc.outcome {
				t.Fatalf("Do: %+v, %v; want %v", out, err, tc.outcome)
			}
			ss := tr.waitSpans(tracing.SpanAck, 2)

			traceID := caller.SpanContext().TraceID().String()
			for _, s := range ss {
				if s.TraceID != traceID {
					t.Errorf("span outside the caller's trace: %v", s)
				}
			}
			root := one(t, ss, "caller", "")
			do := one(t, ss, tracing.SpanDo, "")
			begin := one(t, ss, tracing.SpanBegin, "")
			childOf(t, do, root)
			childOf(t, begin, do)
			if begin.Attrs[string(tracing.AttrTxID)] != id || begin.Attrs[string(tracing.AttrParticipants)] != `["a","b"]` {
				t.Errorf("Begin's attributes: %v", begin.Attrs)
			}
			if do.Attrs[string(tracing.AttrState)] != tc.outcome.String() {
				t.Errorf("Do's state: %v, want %v", do.Attrs, tc.outcome)
			}
			for _, p := range []string{"a", "b"} {
				prep := one(t, ss, tracing.SpanPrepare, p)
				childOf(t, prep, begin)
				if prep.Attrs[string(tracing.AttrTxID)] != id || prep.Attrs[string(tracing.AttrInboxWait)] == "" {
					t.Errorf("%s's Prepare attributes: %v", p, prep.Attrs)
				}
				userPrep := ss.Named("user.prepare")
				found := false
				for _, u := range userPrep {
					found = found || u.ParentID == prep.SpanID
				}
				if !found {
					t.Errorf("%s's handler span is not under its Prepare: %v", p, userPrep)
				}
				vote := one(t, ss, tracing.SpanVote, p)
				childOf(t, vote, prep)
				apply := one(t, ss, tc.apply, p)
				childOf(t, apply, begin)
				childOf(t, one(t, ss, tracing.SpanAck, p), apply)
				found = false
				for _, u := range ss.Named(tc.user) {
					found = found || u.ParentID == apply.SpanID
				}
				if !found {
					t.Errorf("%s's %s is not under its %s", p, tc.user, tc.apply)
				}
			}
			// a's log lines about the transaction carry its trace.
			lines := logs.FilterField(zap.String("txid", id)).FilterField(zap.String("trace_id", traceID))
			if lines.FilterMessage("vote written").Len() != 1 || lines.FilterMessage("acknowledged").Len() != 1 {
				t.Errorf("a's log lines with txid %s and trace_id %s: %v", id, traceID, lines.All())
			}
			decided := ss.Named(tracing.SpanVote).With(string(tracing.AttrDecision), protocol.StateCommitting.String())
			if tc.refuse {
				decided = ss.Named(tracing.SpanVote).With(string(tracing.AttrDecision), protocol.StateAborting.String())
				b := one(t, ss, tracing.SpanPrepare, "b")
				if b.StatusCode != "error" || b.Attrs[string(tracing.AttrVote)] != "no" {
					t.Errorf("b's Prepare: status %s, attributes %v; want error, vote no", b.StatusCode, b.Attrs)
				}
				if do.Attrs[string(tracing.AttrCause)] != string(protocol.CauseVoteNo) || do.StatusCode != "error" {
					t.Errorf("Do: status %s, attributes %v; want error, cause vote_no", do.StatusCode, do.Attrs)
				}
			} else if do.StatusCode != "unset" {
				t.Errorf("Do of a committed transaction: status %s", do.StatusCode)
			}
			if len(decided) != 1 || decided[0].Attrs[string(tracing.AttrDecidedBy)] == "" {
				t.Errorf("the deciding vote: %v; want one, saying who decided", decided)
			}
		})
	}
}

// A participant that dies before voting: the leading replica aborts the
// transaction, and the abort is a span in the transaction's trace.
func TestTraceOfRecovery(t *testing.T) {
	tr := newTraced(t)
	tr.replica("r1", coordinator.WithTracerProvider(tr.tp))
	ra, rb := newRecorder("a"), newRecorder("b")
	rb.block["*"] = make(chan struct{}) // b prepares for ever
	tr.participant("a", ra)
	_, bcli := tr.env.participant("b", rb, false, participant.WithTracerProvider(tr.tp))

	ctx, caller := tr.tp.Tracer("test").Start(tr.ctx, "caller")
	b, err := tr.c.Begin(ctx, coordinator.Request{ID: "lost", Branches: branches("a", "b"), Timeout: time.Minute})
	caller.End()
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "b preparing", func() (bool, string) { return rb.count("lost", "prepare") == 1, fmt.Sprint(rb.phases("lost")) })
	kill(bcli)
	ss := tr.waitSpans(tracing.RecoverySpan(string(coordinator.ActionAbortParticipantLost)), 1)
	abort := one(t, ss, tracing.RecoverySpan(string(coordinator.ActionAbortParticipantLost)), "")
	if abort.TraceID != caller.SpanContext().TraceID().String() || abort.Attrs[string(tracing.AttrTxID)] != b.ID ||
		abort.Attrs[string(tracing.AttrCause)] != string(protocol.CauseParticipantLost) || abort.Attrs[string(tracing.AttrDecision)] != protocol.StateAborting.String() {
		t.Errorf("the replica's abort: %v %v", abort, abort.Attrs)
	}
	childOf(t, abort, one(t, ss, tracing.SpanBegin, ""))
}

// A stored trace context that is not well formed is ignored: the
// participants start traces of their own, and the transaction commits.
func TestMalformedStoredTraceContext(t *testing.T) {
	tr := newTraced(t)
	tr.participant("a", newRecorder("a"))
	keys := protocol.DefaultKeys()
	now := time.Now().UTC()
	rec := protocol.Record{ID: "bad-trace", State: protocol.StatePreparing, Participants: []string{"a"}, Created: now, Deadline: now.Add(time.Minute),
		Digest: protocol.Digest(branches("a")), Trace: protocol.TraceContext{Parent: "00-not-a-trace-context-01", State: "x=y"}}
	writes, err := keys.BeginWrites(rec, branches("a"))
	if err != nil {
		t.Fatal(err)
	}
	var ops []clientv3.Op
	for _, w := range writes {
		ops = append(ops, clientv3.OpPut(w.Key, string(w.Value)))
	}
	if _, err := tr.cli.Txn(tr.ctx).Then(ops...).Commit(); err != nil {
		t.Fatal(err)
	}
	if tx := tr.terminal("bad-trace", 20*time.Second); tx.State != protocol.StateCommitted {
		t.Fatalf("state %v, want committed", tx.State)
	}
	ss := tr.waitSpans(tracing.SpanAck, 1)
	if p := one(t, ss, tracing.SpanPrepare, "a"); p.ParentID != "" {
		t.Errorf("Prepare under a malformed context has a parent: %v", p)
	}
}
