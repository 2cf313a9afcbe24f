package conformance

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// stopGrace is how long an instance may take to exit after SIGTERM.
const stopGrace = 10 * time.Second

// up makes sure instance 1 runs and that a live instance holds the
// registration; a killed instance's lease (still alive until its TTL)
// does not count.
func (s *suite) up(ctx context.Context) error {
	if s.inst[0] == nil || s.inst[0].exited() {
		p, err := s.start(1)
		if err != nil {
			return err
		}
		s.inst[0] = p
	}
	return s.waitRegistered(ctx, 0)
}

// waitRegistered waits until the registration is held with a lease other
// than dead (0: any lease), while instance 1 or 2 runs.
func (s *suite) waitRegistered(ctx context.Context, dead int64) error {
	return s.poll(ctx, "the participant to register", func() error {
		for _, p := range s.inst {
			if p != nil && p.exited() {
				return fmt.Errorf("instance %d exited: %v (log %s)", p.instance, p.err, p.logPath)
			}
		}
		reg, ok, err := s.registration(ctx)
		switch {
		case err != nil:
			return err
		case !ok:
			return fmt.Errorf("%s is not there", s.keys.Participant(s.cfg.Name))
		case reg.lease == dead:
			return fmt.Errorf("%s is still held by the killed instance's lease %d", s.keys.Participant(s.cfg.Name), dead)
		}
		return nil
	})
}

// registration reads the participant's registration key.
func (s *suite) registration(ctx context.Context) (kv, bool, error) {
	resp, err := s.cli.Get(ctx, s.keys.Participant(s.cfg.Name))
	if err != nil {
		return kv{}, false, err
	}
	reg, ok := kvOf(resp)
	return reg, ok, nil
}

// down stops instance i+1 with SIGTERM, as an operator would.
func (s *suite) down(i int) error {
	p := s.inst[i]
	s.inst[i] = nil
	if p == nil {
		return nil
	}
	return p.stop(stopGrace)
}

// crash kills instance i+1 (kill -9) and returns the lease its
// registration was held with, which stays alive until its TTL.
func (s *suite) crash(ctx context.Context, i int) (int64, error) {
	reg, _, err := s.registration(ctx)
	if err != nil {
		return 0, err
	}
	if p := s.inst[i]; p != nil {
		p.kill()
	}
	s.inst[i] = nil
	return reg.lease, nil
}

func (s *suite) stopAll() {
	for i := range s.inst {
		if err := s.down(i); err != nil {
			s.log.Warn(err.Error())
		}
	}
}

// poll calls check every 50ms until it returns nil or ctx ends; then it
// returns what check last said before ctx ended (a check cut short by the
// end of ctx says only that).
func (s *suite) poll(ctx context.Context, what string, check func() error) error {
	start := time.Now()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	var last error
	for {
		err := check()
		if err == nil {
			return nil
		}
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting %.1fs for %s: %w", time.Since(start).Seconds(), what, last)
		case <-t.C:
		}
	}
}

// waitTx polls transaction id until cond holds and returns the state it
// held in.
func (s *suite) waitTx(ctx context.Context, id, what string, cond func(txState) error) (txState, error) {
	var st txState
	err := s.poll(ctx, what, func() error {
		var err error
		if st, err = s.read(ctx, id, s.cfg.Name, PeerName); err != nil {
			return err
		}
		return cond(st)
	})
	return st, err
}

// decisionRev returns D, the revision of the Txn that decided id: the
// record's ModRevision while it is decided, or that of the version before
// a terminal one (the record is written three times: begin, decision,
// finish).
func (s *suite) decisionRev(ctx context.Context, id string, st txState) (int64, error) {
	if st.rec == nil || !st.rec.State.Decided() {
		return 0, fmt.Errorf("%s is not decided: %s", id, st)
	}
	if !st.rec.State.Terminal() {
		return st.recRev, nil
	}
	resp, err := s.cli.Get(ctx, s.keys.Record(id), clientv3.WithRev(st.recRev-1))
	if err != nil {
		return 0, err
	}
	prev, ok := kvOf(resp)
	if !ok {
		return 0, fmt.Errorf("%s: no record before revision %d", id, st.recRev)
	}
	return prev.mod, nil
}
