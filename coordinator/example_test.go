package coordinator_test

import (
	"context"
	"fmt"
	"os"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/internal/testkit/etcdtest"
	"github.com/concord-tx/concord/participant"
	"github.com/concord-tx/concord/protocol"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A transfer between two services: one branch per participant. Do returns
// once the outcome is decided; a no vote from either side aborts both.
func ExampleClient_Do() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "concord-example-")
	defer os.RemoveAll(dir)
	etcd, err := etcdtest.StartDir(dir) // in production: your etcd cluster
	if err != nil {
		panic(err)
	}
	defer etcd.Close()
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints})
	if err != nil {
		panic(err)
	}
	defer cli.Close()

	// The two services (normally separate processes), each a participant.
	for _, name := range []string{"bank-a", "bank-b"} {
		p, err := participant.New(cli, name, participant.HandlerFuncs{
			PrepareFunc: func(ctx context.Context, tx participant.Tx) error {
				if string(tx.Payload) == `{"account":"alice","amount":-1000}` {
					return fmt.Errorf("insufficient funds")
				}
				return nil // reserve durably, then vote yes
			},
		})
		if err != nil {
			panic(err)
		}
		defer p.Close()
		p.WaitActive(ctx)
	}

	// A coordinator replica drives deadlines and crashed participants.
	replica, err := coordinator.NewReplica(cli)
	if err != nil {
		panic(err)
	}
	defer replica.Close()

	c, err := coordinator.NewClient(ctx, cli)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	for _, amount := range []int{10, 1000} {
		out, err := c.Do(ctx, coordinator.Request{Branches: []protocol.Branch{
			{Participant: "bank-a", Payload: fmt.Appendf(nil, `{"account":"alice","amount":-%d}`, amount)},
			{Participant: "bank-b", Payload: fmt.Appendf(nil, `{"account":"bob","amount":%d}`, amount)},
		}})
		if err != nil {
			panic(err)
		}
		if out.Committed() {
			fmt.Println(amount, out.State)
		} else {
			fmt.Println(amount, out.State, out.Reason)
		}
	}
	// Output:
	// 10 committed
	// 1000 aborted bank-a: insufficient funds
}
