package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// Role is what a credential may do. Each role includes the ones before it:
// admin may begin and read, begin may read.
type Role int

// Roles, weakest first; the zero value is no role.
const (
	RoleRead  Role = iota + 1 // list and show transactions, read /metrics
	RoleBegin                 // begin transactions
	RoleAdmin                 // abort transactions
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleBegin:
		return "begin"
	case RoleAdmin:
		return "admin"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// ParseRole reads a role name: read, begin or admin.
func ParseRole(s string) (Role, error) {
	for _, r := range []Role{RoleRead, RoleBegin, RoleAdmin} {
		if s == r.String() {
			return r, nil
		}
	}
	return 0, fmt.Errorf("role %s is not one of read, begin, admin", quoteCut(s))
}

// MinTokenLength is the shortest token a credential may have: a token is
// a password that is never typed, so make it long and random
// (`openssl rand -hex 32`).
const MinTokenLength = 16

// credential is one entry: its token is kept only as a hash.
type credential struct {
	name string
	role Role
	hash [sha256.Size]byte
}

// Credentials are the named tokens allowed to call the API, each with a
// role. The zero value (or nil) holds none. It is immutable once built.
type Credentials struct {
	list []credential
}

// ParseCredentials reads credentials in the text format of
// --credentials-file: one entry `name:role:token` per line (or several on
// a line, separated by spaces or commas); blank lines and lines starting
// with # are ignored. Names are [A-Za-z0-9._-]; the role is read, begin or
// admin; the token is at least MinTokenLength characters and holds no
// space or comma. Errors name the entry by its position and never show a
// token. source names where the text came from, for the errors.
func ParseCredentials(text, source string) (*Credentials, error) {
	c := &Credentials{}
	names := make(map[string]bool)
	for lineNo, line := range strings.Split(text, "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		for _, entry := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\r' }) {
			at := fmt.Sprintf("%s: line %d", source, lineNo+1)
			name, rest, ok1 := strings.Cut(entry, ":")
			roleName, token, ok2 := strings.Cut(rest, ":")
			if !ok1 || !ok2 {
				return nil, fmt.Errorf("%s: an entry is not name:role:token", at)
			}
			if !validName(name) {
				return nil, fmt.Errorf("%s: name %s: expected letters, digits, '.', '_' or '-'", at, quoteCut(name))
			}
			if names[name] {
				return nil, fmt.Errorf("%s: name %q is given twice", at, name)
			}
			names[name] = true
			role, err := ParseRole(roleName)
			if err != nil {
				// Not quoted: a misplaced field could be a token.
				return nil, fmt.Errorf("%s: credential %q: the role is not read, begin or admin (expected name:role:token)", at, name)
			}
			if len(token) < MinTokenLength {
				return nil, fmt.Errorf("%s: credential %q: token shorter than %d characters (make one with `openssl rand -hex 32`)", at, name, MinTokenLength)
			}
			cr := credential{name: name, role: role, hash: sha256.Sum256([]byte(token))}
			if _, _, dup := c.lookup(token); dup {
				return nil, fmt.Errorf("%s: credential %q: same token as another credential", at, name)
			}
			c.list = append(c.list, cr)
		}
	}
	return c, nil
}

// LoadCredentials reads a credentials file (see ParseCredentials).
func LoadCredentials(path string) (*Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseCredentials(string(b), path)
}

// Merge returns the credentials of c and o together; a name or a token in
// both is an error, as within one text.
func (c *Credentials) Merge(o *Credentials) (*Credentials, error) {
	out := &Credentials{}
	for _, from := range []*Credentials{c, o} {
		if from == nil {
			continue
		}
		for _, cr := range from.list {
			for _, have := range out.list {
				switch {
				case have.name == cr.name:
					return nil, fmt.Errorf("credential %q is given twice", cr.name)
				case have.hash == cr.hash:
					return nil, fmt.Errorf("credential %q: same token as credential %q", cr.name, have.name)
				}
			}
			out.list = append(out.list, cr)
		}
	}
	return out, nil
}

// Len is the number of credentials.
func (c *Credentials) Len() int {
	if c == nil {
		return 0
	}
	return len(c.list)
}

// lookup finds the credential of token. It compares hashes, so neither the
// token's length nor its content leaks through timing, and it looks at
// every entry whatever matches.
func (c *Credentials) lookup(token string) (name string, role Role, ok bool) {
	if c == nil {
		return "", 0, false
	}
	h := sha256.Sum256([]byte(token))
	for _, cr := range c.list {
		if subtle.ConstantTimeCompare(h[:], cr.hash[:]) == 1 {
			name, role, ok = cr.name, cr.role, true
		}
	}
	return name, role, ok
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Caller is who sent a request, as the gate authenticated it.
type Caller struct {
	Name   string // the credential's name; Anonymous without credentials
	Role   Role
	Remote string // the request's remote address
}

// Anonymous is the caller's name when the server has no credentials
// configured (it then serves only loopback addresses, to anyone there).
const Anonymous = "anonymous"

type callerKey struct{}

// CallerOf returns the caller the gate let through, for handlers behind
// Gate.Require.
func CallerOf(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
