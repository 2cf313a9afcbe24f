package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/concord-tx/concord/coordinator"
	"github.com/concord-tx/concord/httpapi"
	"github.com/concord-tx/concord/participant"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A service that does not reach etcd begins and inspects transactions
// through a coordinator's API, with a credential of the begin role.
func ExampleClient_Do() {
	ctx := context.Background()
	// The coordinator's side (coord serve does this): the handler over a
	// coordinator client, with its credentials. etcd is the tests' etcd.
	cli, err := clientv3.New(clientv3.Config{Endpoints: etcd.Endpoints})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	c, err := coordinator.NewClient(ctx, cli, coordinator.WithPrefix("/example"))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	creds, err := httpapi.ParseCredentials("checkout:begin:c3f1a9e07b5d4e2f8a61", "example")
	if err != nil {
		panic(err)
	}
	api := httpapi.New(httpapi.Config{Client: c, Credentials: creds})
	defer api.Close()
	srv := httptest.NewServer(api)
	defer srv.Close()
	// A participant (normally its own service).
	p, err := participant.New(cli, "inventory", participant.HandlerFuncs{}, participant.WithPrefix("/example"))
	if err != nil {
		panic(err)
	}
	defer p.Close()
	p.WaitActive(ctx)

	// The caller's side.
	client, err := httpapi.NewClient(srv.URL, httpapi.WithToken("c3f1a9e07b5d4e2f8a61"))
	if err != nil {
		panic(err)
	}
	out, err := client.Do(ctx, httpapi.BeginRequest{
		ID:       "order-42",
		Branches: []httpapi.BranchRequest{{Participant: "inventory", Payload: []byte(`{"sku":"A-1","count":2}`)}},
		Timeout:  "5s",
	})
	fmt.Println(out.ID, out.State, err)
	tx, err := client.Get(ctx, "order-42")
	fmt.Println(tx.Participants, err)
	_, err = client.Get(ctx, "order-43")
	fmt.Println(errors.Is(err, httpapi.ErrNotFound))
	_, err = client.Abort(ctx, "order-42", "changed my mind")
	fmt.Println(errors.Is(err, httpapi.ErrForbidden))
	// Output:
	// order-42 committed <nil>
	// [inventory] <nil>
	// true
	// true
}
