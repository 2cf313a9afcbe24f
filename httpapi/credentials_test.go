package httpapi_test

import (
	"strings"
	"testing"

	"github.com/concord-tx/concord/httpapi"
)

// Credentials in error name where (source, line, credential) and what was
// expected, and never show a token; two sources merged follow the same
// rules as one: no name and no token twice.
func TestCredentialErrors(t *testing.T) {
	const token, other = "0123456789abcdef-secret", "fedcba9876543210-secret"
	for _, tc := range []struct{ text, says string }{
		{"ops:admin", "src: line 1: an entry is not name:role:token"},
		{"\n# c\nop$:admin:" + token, `src: line 3: name "op$": expected letters`},
		{"ops:admin:" + token + ", ops:read:" + other, `src: line 1: name "ops" is given twice`},
		{"ops:root:" + token, `src: line 1: credential "ops": the role is not read, begin or admin`},
		{"ops:admin:short", `src: line 1: credential "ops": token shorter than 16 characters`},
		{"ops:admin:" + token + "\nviewer:read:" + token, `src: line 2: credential "viewer": same token as another credential`},
	} {
		_, err := httpapi.ParseCredentials(tc.text, "src")
		if err == nil || !strings.HasPrefix(err.Error(), tc.says) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%q: %v, want an error starting %q, without the token", tc.text, err, tc.says)
		}
	}

	parse := func(text string) *httpapi.Credentials {
		t.Helper()
		c, err := httpapi.ParseCredentials(text, "src")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	file := parse("ops:admin:" + token)
	if m, err := file.Merge(parse("viewer:read:" + other)); err != nil || m.Len() != 2 {
		t.Errorf("merge of two credentials: %v, %v", m.Len(), err)
	}
	for _, tc := range []struct{ text, says string }{
		{"ops:read:" + other, `credential "ops" is given twice`},
		{"viewer:read:" + token, `credential "viewer": same token as credential "ops"`},
	} {
		if _, err := file.Merge(parse(tc.text)); err == nil || err.Error() != tc.says || strings.Contains(err.Error(), "secret") {
			t.Errorf("merge with %q: %v, want %q", tc.text, err, tc.says)
		}
	}
}
