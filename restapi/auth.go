package restapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"time"
)

// Patroni's texts for refused writes (patroni-compat.md §2.1), verbatim.
const (
	textClientCertRequired = "client certificate required"
	textNoAuthHeader       = "no auth header received"
	textNotAuthenticated   = "not authenticated"
	// textTooManyFailures is Regent's: Patroni does not throttle.
	textTooManyFailures = "too many failed logins from this address; retry later"
	// authRealm names Patroni, as patronictl and Patroni's peers expect.
	authRealm = `Basic realm="Patroni"`
)

// credentials holds the configured Basic credentials as SHA-256 digests,
// so that comparing them takes the same time whatever the input's length.
type credentials struct {
	enabled    bool
	user, pass [sha256.Size]byte
}

func newCredentials(a Authentication) credentials {
	if !a.Enabled() {
		return credentials{}
	}
	return credentials{
		enabled: true,
		user:    sha256.Sum256([]byte(a.Username)),
		pass:    sha256.Sum256([]byte(a.Password.Reveal())),
	}
}

// match compares both fields in constant time (both are always compared).
func (c credentials) match(user, pass string) bool {
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	okUser := subtle.ConstantTimeCompare(u[:], c.user[:])
	okPass := subtle.ConstantTimeCompare(p[:], c.pass[:])
	return okUser&okPass == 1
}

// safeMethod reports the methods that stay open: reads and health checks.
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkAccess guards every write (POST, PUT, PATCH, DELETE and any other
// unsafe method), in Patroni's order (§2.1): the client address against
// restapi.allowlist (and the members' hosts) when set (403), a client
// certificate when verify_client asks for one on https (403), then HTTP
// Basic when authentication is configured (401; 429 while the address is
// throttled for wrong passwords). It answers the request and returns
// false when access is denied.
func (s *Server) checkAccess(w http.ResponseWriter, r *http.Request) bool {
	if safeMethod(r.Method) {
		return true
	}
	// deny answers Patroni's refusals in its plain text, Regent's own
	// (allowlist, throttle) as JSON errors.
	deny := func(code int, text string) bool {
		if r.ContentLength != 0 {
			w.Header().Set("Connection", "close") // the body stays unread
		}
		s.log.Warn("REST API write refused", "method", r.Method, "path", r.URL.Path,
			"remote_addr", r.RemoteAddr, "status", code, "reason", text)
		switch {
		case code == http.StatusUnauthorized:
			w.Header().Set("WWW-Authenticate", authRealm)
		case text == textAccessDenied || text == textTooManyFailures:
			WriteError(w, code, text)
			return false
		}
		writeText(w, code, text)
		return false
	}
	if s.allow.enabled() && !s.inAllowlist(r) {
		return deny(http.StatusForbidden, textAccessDenied)
	}
	if r.TLS != nil && s.cfg.verifyClient() != VerifyClientNone && len(r.TLS.PeerCertificates) == 0 {
		return deny(http.StatusForbidden, textClientCertRequired)
	}
	if !s.creds.enabled {
		return true
	}
	addr, _ := clientAddr(r)
	if wait := s.throttle.blocked(addr, s.now()); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((wait+time.Second-1)/time.Second)))
		return deny(http.StatusTooManyRequests, textTooManyFailures)
	}
	if _, ok := r.Header["Authorization"]; !ok {
		return deny(http.StatusUnauthorized, textNoAuthHeader)
	}
	user, pass, ok := r.BasicAuth()
	if !ok || !s.creds.match(user, pass) {
		if s.throttle.fail(addr, s.now()) {
			s.log.Warn("REST API: too many failed logins; refusing this address for a while",
				"remote_addr", r.RemoteAddr, "failures", maxLoginFailures, "window", loginWindow, "blocked_for", loginBlock)
		}
		return deny(http.StatusUnauthorized, textNotAuthenticated)
	}
	return true
}
