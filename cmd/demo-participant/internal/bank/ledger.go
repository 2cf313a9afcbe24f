package bank

// Ledger is what the HTTP API reads of a bank, whatever its store (the
// bbolt Store or the SQLStore).
type Ledger interface {
	Accounts() (map[string]Account, error)
	Applied() (map[string]Phase, error)
}

var (
	_ Ledger = (*Store)(nil)
	_ Ledger = (*SQLStore)(nil)
)
