package chaos

import (
	"encoding/json"
	"os"
	"sync"
	"time"
)

// Result is what a client was told about a transfer.
type Result string

const (
	Committed Result = "committed"
	Aborted   Result = "aborted"
	Unknown   Result = "unknown" // the call failed: it may or may not have happened
)

// Leg is one branch of a transfer: a move on one account of one bank.
type Leg struct {
	Bank    string `json:"bank"`
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// Op is one transfer request and its answer, as the client saw them.
type Op struct {
	ID       string    `json:"id"`
	Coord    string    `json:"coord"`    // the replica that gave the last answer
	Attempts int       `json:"attempts"` // calls made, each to the next replica
	Legs     []Leg     `json:"legs"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Phase    Phase     `json:"phase"` // of the run, when the answer came
	Result   Result    `json:"result"`
	Reason   string    `json:"reason,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Phase of a run: traffic before, during and after the faults.
type Phase string

const (
	PhaseBefore Phase = "before"
	PhaseDuring Phase = "during"
	PhaseAfter  Phase = "after"
)

// History is every request of a run with its answer, kept in memory for
// the checks and appended to a JSON-lines file as it completes.
type History struct {
	mu  sync.Mutex
	ops []Op
	f   *os.File
	enc *json.Encoder
}

// NewHistory writes the history to path.
func NewHistory(path string) (*History, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &History{f: f, enc: json.NewEncoder(f)}, nil
}

// Add records a completed request.
func (h *History) Add(op Op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, op)
	h.enc.Encode(op)
}

// Tally returns how many requests got each answer so far.
func (h *History) Tally() map[Result]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := map[Result]int{}
	for _, op := range h.ops {
		t[op.Result]++
	}
	return t
}

// Ops returns every request recorded so far.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Op(nil), h.ops...)
}

// Close closes the file.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.f.Close()
}
