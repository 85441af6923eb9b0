package restapi

import (
	"net/netip"
	"sync"
	"time"
)

// Failed-login throttling: a client address that sends wrong credentials
// maxLoginFailures times within loginWindow is refused (429, Retry-After)
// for loginBlock, right or wrong credentials alike, so that a password
// cannot be guessed at the rate the server answers. Counters are per
// address: one client's success or failures never change another's.
const (
	maxLoginFailures = 5
	loginWindow      = time.Minute
	loginBlock       = time.Minute
	// maxThrottled bounds the tracked addresses (about 100 bytes each):
	// when full, expired entries go first, then the oldest window.
	maxThrottled = 4096
)

// loginThrottle counts failed logins per client address. Safe for
// concurrent use.
type loginThrottle struct {
	mu      sync.Mutex
	clients map[netip.Addr]*loginFailures
	limit   int // tracked addresses at the most
}

type loginFailures struct {
	since        time.Time // start of the current window
	count        int
	blockedUntil time.Time
}

func newLoginThrottle(limit int) *loginThrottle {
	return &loginThrottle{clients: make(map[netip.Addr]*loginFailures), limit: limit}
}

// blocked returns how long addr must still wait; 0 when it may try.
func (t *loginThrottle) blocked(addr netip.Addr, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.clients[addr]
	if !ok || !now.Before(f.blockedUntil) {
		return 0
	}
	return f.blockedUntil.Sub(now)
}

// fail records a wrong password from addr and reports whether that
// blocked it.
func (t *loginThrottle) fail(addr netip.Addr, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.clients[addr]
	if !ok {
		if len(t.clients) >= t.limit {
			t.evict(now)
		}
		f = &loginFailures{since: now}
		t.clients[addr] = f
	}
	if now.Sub(f.since) >= loginWindow && !now.Before(f.blockedUntil) {
		*f = loginFailures{since: now}
	}
	f.count++
	if f.count >= maxLoginFailures && !now.Before(f.blockedUntil) {
		f.blockedUntil = now.Add(loginBlock)
		return true
	}
	return false
}

// evict drops expired entries, or the one with the oldest window when
// none has expired; mu held.
func (t *loginThrottle) evict(now time.Time) {
	var oldest netip.Addr
	var oldestSince time.Time
	for addr, f := range t.clients {
		if now.Sub(f.since) >= loginWindow && !now.Before(f.blockedUntil) {
			delete(t.clients, addr)
			continue
		}
		if oldestSince.IsZero() || f.since.Before(oldestSince) {
			oldest, oldestSince = addr, f.since
		}
	}
	if len(t.clients) >= t.limit {
		delete(t.clients, oldest)
	}
}

// tracked returns the number of addresses held (tests).
func (t *loginThrottle) tracked() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.clients)
}
