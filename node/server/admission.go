package server

import (
	"net"
	"net/netip"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/quicproquo/quicproquo/internal/transport"
)

// Kinds of refused or closed connections, label values of the refusal
// metric beside the transport's limit kinds.
const (
	refuseConns          = "conns"               // MaxConns open in all
	refusePerIP          = "connsPerIP"          // MaxConnsPerIP open from the address
	refuseAnonPerIP      = "anonymousConnsPerIP" // MaxAnonConnsPerIP anonymous ones from the address
	evictPerIdentity     = "connsPerIdentity"    // the identity's oldest connection closed for its newest
	evictAnonForIdentity = "anonymousEvicted"    // an anonymous connection closed to admit an identity
)

// admitted is an open connection as admission counts it.
type admitted struct {
	conn     *quic.Conn
	ip       netip.Addr
	identity string // "" for anonymous
	order    uint64 // admission order: lower is older
	gone     bool   // uncounted already (evicted)
}

// admission decides which connections the node serves. Bounds: MaxConns
// in all, MaxConnsPerIP from one address, MaxAnonConnsPerIP of those
// without a certificate, and MaxConnsPerIdentity per identity.
//
// Fairness: an identity past its own cap replaces its oldest connection
// (a daemon that reconnects is never locked out by its own stale
// connections, and one identity cannot hold more than its share), and an
// identified newcomer at a full address or a full node closes the oldest
// anonymous connection there (anonymous ones may only ping) before it is
// refused. Identities are free, so these shares bound one key, not one
// attacker: MaxConnsPerIP and MaxConns are the bounds that hold.
type admission struct {
	maxConns, perIP, anonPerIP, perIdentity int

	mu         sync.Mutex
	order      uint64
	all        map[*admitted]struct{}
	byIP       map[netip.Addr]int
	anonByIP   map[netip.Addr]int
	byIdentity map[string]int
}

func newAdmission(cfg Config) *admission {
	return &admission{
		maxConns: cfg.MaxConns, perIP: cfg.MaxConnsPerIP, anonPerIP: cfg.MaxAnonConnsPerIP, perIdentity: cfg.MaxConnsPerIdentity,
		all:        make(map[*admitted]struct{}),
		byIP:       make(map[netip.Addr]int),
		anonByIP:   make(map[netip.Addr]int),
		byIdentity: make(map[string]int),
	}
}

func remoteIP(conn *quic.Conn) netip.Addr {
	if ua, ok := conn.RemoteAddr().(*net.UDPAddr); ok {
		return ua.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// admit counts conn in, or returns the kind of bound that refuses it. The
// connections in evict, already uncounted, must be closed (with their
// kinds, for the metric).
func (a *admission) admit(conn *quic.Conn) (e *admitted, refused string, evict []*admitted, kinds []string) {
	e = &admitted{conn: conn, ip: remoteIP(conn)}
	if id := transport.PeerIdentity(conn.ConnectionState().TLS); id != nil {
		e.identity = string(id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	evictOldest := func(kind string, match func(*admitted) bool) bool {
		var old *admitted
		for c := range a.all {
			if match(c) && (old == nil || c.order < old.order) {
				old = c
			}
		}
		if old == nil {
			return false
		}
		a.uncountLocked(old)
		evict, kinds = append(evict, old), append(kinds, kind)
		return true
	}
	anonAt := func(ip netip.Addr) func(*admitted) bool {
		return func(c *admitted) bool { return c.identity == "" && (!ip.IsValid() || c.ip == ip) }
	}
	if e.identity == "" {
		switch {
		case a.anonByIP[e.ip] >= a.anonPerIP:
			return e, refuseAnonPerIP, nil, nil
		case a.byIP[e.ip] >= a.perIP:
			return e, refusePerIP, nil, nil
		case len(a.all) >= a.maxConns:
			return e, refuseConns, nil, nil
		}
	} else {
		if a.byIdentity[e.identity] >= a.perIdentity {
			evictOldest(evictPerIdentity, func(c *admitted) bool { return c.identity == e.identity })
		}
		if a.byIP[e.ip] >= a.perIP && !evictOldest(evictAnonForIdentity, anonAt(e.ip)) {
			return e, refusePerIP, evict, kinds
		}
		if len(a.all) >= a.maxConns && !evictOldest(evictAnonForIdentity, anonAt(netip.Addr{})) {
			return e, refuseConns, evict, kinds
		}
	}
	a.order++
	e.order = a.order
	a.all[e] = struct{}{}
	a.byIP[e.ip]++
	if e.identity == "" {
		a.anonByIP[e.ip]++
	} else {
		a.byIdentity[e.identity]++
	}
	return e, "", evict, kinds
}

// closeIdentity closes every connection of identity id with code and
// reason and returns how many it closed.
func (a *admission) closeIdentity(id []byte, code quic.ApplicationErrorCode, reason string) int {
	a.mu.Lock()
	var conns []*quic.Conn
	for c := range a.all {
		if c.identity == string(id) {
			conns = append(conns, c.conn)
		}
	}
	a.mu.Unlock()
	for _, c := range conns {
		c.CloseWithError(code, reason)
	}
	return len(conns)
}

// leave uncounts an admitted connection that has ended.
func (a *admission) leave(e *admitted) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.uncountLocked(e)
}

func (a *admission) uncountLocked(e *admitted) {
	if e.gone {
		return
	}
	e.gone = true
	delete(a.all, e)
	dec := func(m map[netip.Addr]int, k netip.Addr) {
		if m[k]--; m[k] <= 0 {
			delete(m, k)
		}
	}
	dec(a.byIP, e.ip)
	if e.identity == "" {
		dec(a.anonByIP, e.ip)
	} else if a.byIdentity[e.identity]--; a.byIdentity[e.identity] <= 0 {
		delete(a.byIdentity, e.identity)
	}
}
