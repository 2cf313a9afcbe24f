package transfer_test

import (
	"fmt"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/transfer"
)

func ExampleTransfer_Branches() {
	across := transfer.Transfer{
		From:   transfer.Endpoint{Bank: "bank-a", Account: "alice"},
		To:     transfer.Endpoint{Bank: "bank-b", Account: "bob"},
		Amount: 10,
	}
	within := across
	within.To.Bank = "bank-a"
	for _, t := range []transfer.Transfer{across, within} {
		branches, _ := t.Branches()
		for _, b := range branches {
			fmt.Printf("%s %s\n", b.Participant, b.Payload)
		}
	}
	// Output:
	// bank-a {"account":"alice","amount":-10}
	// bank-b {"account":"bob","amount":10}
	// bank-a {"moves":[{"account":"alice","amount":-10},{"account":"bob","amount":10}]}
}

func ExampleReasonKind() {
	fmt.Println(transfer.ReasonKind("bank-a: insufficient funds: alice has 5 available (balance 5, held 0), debit of 10"))
	fmt.Println(transfer.ReasonKind("deadline exceeded: not every participant voted within 5s"))
	// Output:
	// bank-a: insufficient funds
	// deadline exceeded
}
