package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"
)

// sessionCookie names the cookie that carries a browser's session id.
const sessionCookie = "concord_session"

// session is one signed-in browser. The token it signed in with stays
// here, in the server's memory, and is checked again on every request.
type session struct {
	token   string // "" on an open console
	csrf    string // the token every state-changing form must carry
	expires time.Time
}

// sessions is the server-side session map: bounded, with expiry. Keys are
// digests of the cookie values, so the map holds no usable session id.
type sessions struct {
	ttl time.Duration
	max int
	now func() time.Time
	mu  struct {
		sync.Mutex
		byID map[[sha256.Size]byte]*session
	}
}

func newSessions(ttl time.Duration, max int, now func() time.Time) *sessions {
	s := &sessions{ttl: ttl, max: max, now: now}
	s.mu.byID = make(map[[sha256.Size]byte]*session)
	return s
}

// create starts a session for token and returns its cookie value.
func (s *sessions) create(token string) (string, *session) {
	id := randomToken()
	sess := &session{token: token, csrf: randomToken(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.byID) >= s.max {
		s.evictLocked()
	}
	s.mu.byID[sha256.Sum256([]byte(id))] = sess
	return id, sess
}

// lookup returns the live session of cookie value id.
func (s *sessions) lookup(id string) (*session, bool) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.mu.byID[k]
	if !ok {
		return nil, false
	}
	if !s.now().Before(sess.expires) {
		delete(s.mu.byID, k)
		return nil, false
	}
	return sess, true
}

// end removes the session of cookie value id.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.mu.byID, sha256.Sum256([]byte(id)))
}

// evictLocked drops the expired sessions, or else the one closest to
// expiry, to make room for one more.
func (s *sessions) evictLocked() {
	now := s.now()
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	for k, sess := range s.mu.byID {
		if !now.Before(sess.expires) {
			delete(s.mu.byID, k)
			continue
		}
		if oldestAt.IsZero() || sess.expires.Before(oldestAt) {
			oldest, oldestAt = k, sess.expires
		}
	}
	if len(s.mu.byID) >= s.max {
		delete(s.mu.byID, oldest)
	}
}

// checkCSRF reports whether form value got is the session's CSRF token,
// compared in constant time.
func (sess *session) checkCSRF(got string) bool {
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(sess.csrf)) == 1
}

// setCookie gives the browser its session id: HttpOnly, SameSite=Strict,
// and Secure when the request came over TLS.
func setCookie(w http.ResponseWriter, r *http.Request, id string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: id, Path: "/", MaxAge: int(ttl / time.Second),
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// clearCookie removes the session cookie.
func clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// randomToken returns 32 random bytes, base64url-encoded.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}
