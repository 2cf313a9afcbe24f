package participant

import (
	"errors"
	"testing"
	"time"
)

func TestNewRefusesBadConfiguration(t *testing.T) {
	h := HandlerFuncs{}
	tests := []struct {
		name  string
		pname string
		h     Handler
		opts  []Option
	}{
		{"bad name", "Bank A", h, nil},
		{"empty name", "", h, nil},
		{"nil handler", "bank-a", nil, nil},
		{"bad prefix", "bank-a", h, []Option{WithPrefix("tx")}},
		{"short lease", "bank-a", h, []Option{WithLeaseTTL(100 * time.Millisecond)}},
		{"no workers", "bank-a", h, []Option{WithWorkers(0)}},
		{"backoff", "bank-a", h, []Option{WithRetryBackoff(time.Second, time.Millisecond)}},
		{"ack delay", "bank-a", h, []Option{WithAckDelay(0)}},
	}
	for _, tt := range tests {
		// No etcd client is needed: validation comes first.
		if _, err := New(nil, tt.pname, tt.h, tt.opts...); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", tt.name, err)
		}
	}
}
