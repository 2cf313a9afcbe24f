package bank_test

import (
	"fmt"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
)

func ExampleEncodePayload() {
	one, _ := bank.EncodePayload([]bank.Move{{Account: "alice", Amount: -10}})
	both, _ := bank.EncodePayload([]bank.Move{{Account: "alice", Amount: -10}, {Account: "bob", Amount: 10}})
	fmt.Println(string(one))
	fmt.Println(string(both))
	// Output:
	// {"account":"alice","amount":-10}
	// {"moves":[{"account":"alice","amount":-10},{"account":"bob","amount":10}]}
}

func ExampleParsePayload() {
	moves, err := bank.ParsePayload([]byte(`{"account": "alice", "amount": 0}`))
	fmt.Println(moves, err)
	// Output:
	// [] invalid payload: account "alice": amount 0, expected a non-zero integer
}
