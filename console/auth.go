package console

// Role is what a credential may do, named as the API names it.
type Role string

const (
	// RoleRead sees transactions, participants and replicas.
	RoleRead Role = "read"
	// RoleBegin begins transactions (through the API; the console does not
	// begin any).
	RoleBegin Role = "begin"
	// RoleAdmin may do everything, abort included.
	RoleAdmin Role = "admin"
)

// Identity is who a credential belongs to and what it may do.
type Identity struct {
	Name  string
	Roles []Role
}

// Can reports whether the identity holds role r; admin holds every role.
func (id Identity) Can(r Role) bool {
	for _, have := range id.Roles {
		if have == r || have == RoleAdmin {
			return true
		}
	}
	return false
}

// Authenticator checks a bearer token, the same credential the HTTP API
// takes. It must compare in constant time and must be safe for concurrent
// use. The console calls it at sign-in and again on every request of the
// session, so that a credential removed from the server stops working.
type Authenticator interface {
	Authenticate(token string) (Identity, bool)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(token string) (Identity, bool)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(token string) (Identity, bool) { return f(token) }

// openIdentity is everyone's identity on a console without an
// Authenticator: the server listens on loopback only, like the API then.
var openIdentity = Identity{Name: "local", Roles: []Role{RoleAdmin}}
