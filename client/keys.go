package client

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// KeyFunc names the bucket a request is charged to. ok is false when the
// function has no key for this request (no API key header, no signed-in
// user, ...): the [Rule] then does not apply and the next one is tried.
type KeyFunc func(r *http.Request) (key string, ok bool)

// ParsePrefixes parses trusted proxy addresses for [ClientIP]: CIDR prefixes
// ("10.0.0.0/8", "fd00::/8") or single addresses ("192.0.2.1", taken as /32
// or /128).
func ParsePrefixes(s ...string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(s))
	for _, v := range s {
		v = strings.TrimSpace(v)
		if strings.Contains(v, "/") {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: %w", v, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", v, err)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// ClientIP keys a request by the client's IP address.
//
// X-Forwarded-For is believed only when the direct peer (r.RemoteAddr) is
// one of the trusted proxies: then the list is walked from the right,
// skipping trusted proxies, and the first address that is not a trusted
// proxy is the client. Entries left of it were written by the client itself
// and could be anything, so they are never used. If every entry is a trusted
// proxy the leftmost is the client; if an entry does not parse, the trusted
// hop that reported it is used instead, so a garbled header cannot mint fresh
// keys. With no trusted proxies the header is ignored entirely: a client can
// send any X-Forwarded-For it likes.
//
// IPv4-mapped IPv6 addresses are keyed as IPv4. A RemoteAddr that is not an
// IP address (a Unix socket) is used as it is, and is never trusted.
func ClientIP(trusted ...netip.Prefix) KeyFunc {
	trusted = append([]netip.Prefix(nil), trusted...)
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, bool) {
		peer, ok := parseHostAddr(r.RemoteAddr)
		if !ok {
			return r.RemoteAddr, true
		}
		if len(trusted) == 0 || !isTrusted(peer) {
			return peer.String(), true
		}
		hops := forwardedFor(r.Header)
		client := peer
		for i := len(hops) - 1; i >= 0; i-- {
			a, ok := parseHostAddr(hops[i])
			if !ok {
				break // client stays the trusted hop that reported the garbage
			}
			client = a
			if !isTrusted(a) {
				break
			}
		}
		return client.String(), true
	}
}

// forwardedFor splits every X-Forwarded-For line into its entries, in order.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		for _, e := range strings.Split(line, ",") {
			hops = append(hops, strings.TrimSpace(e))
		}
	}
	return hops
}

// parseHostAddr parses "ip", "ip:port", "[ipv6]:port" and "[ipv6]".
func parseHostAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// Header keys a request by the value of a header, and does not apply when
// the header is absent or empty. For secrets use [APIKey] instead.
func Header(name string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		v := r.Header.Get(name)
		return v, v != ""
	}
}

// APIKey keys a request by the API key in the named header (for example
// "X-API-Key"), and does not apply when the header is absent or empty. The
// key is hashed (SHA-256, first 16 bytes in hex), so secrets never reach
// Sluice's keyspace, CLIENT LIST or logs.
//
// APIKey does not check that the key is valid: put authentication first, or
// key by [User] once the request is authenticated, or an attacker can spread
// requests over invented keys.
func APIKey(header string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		v := r.Header.Get(header)
		if v == "" {
			return "", false
		}
		sum := sha256.Sum256([]byte(v))
		return hex.EncodeToString(sum[:16]), true
	}
}

// User keys a request by the authenticated user that user returns (for
// example read from the request's context by an authentication middleware),
// and does not apply when user returns "".
func User(user func(r *http.Request) string) KeyFunc {
	return func(r *http.Request) (string, bool) {
		u := user(r)
		return u, u != ""
	}
}

// Route keys a request by its route: the http.ServeMux pattern that matched
// (r.Pattern, e.g. "GET /items/{id}") when the middleware wraps a handler
// registered on a ServeMux, otherwise the method and URL path. Combine it
// with [Join] for per-client, per-endpoint limits.
func Route() KeyFunc {
	return func(r *http.Request) (string, bool) {
		if r.Pattern != "" {
			return r.Pattern, true
		}
		return r.Method + " " + r.URL.Path, true
	}
}

// Join keys a request by every part's key joined with sep, for example
// Join("@", User(...), ClientIP()) gives "alice@192.0.2.7". It does not
// apply unless every part does.
func Join(sep string, parts ...KeyFunc) KeyFunc {
	return func(r *http.Request) (string, bool) {
		keys := make([]string, len(parts))
		for i, p := range parts {
			k, ok := p(r)
			if !ok {
				return "", false
			}
			keys[i] = k
		}
		return strings.Join(keys, sep), true
	}
}

// FirstOf keys a request by the first part that applies.
func FirstOf(parts ...KeyFunc) KeyFunc {
	return func(r *http.Request) (string, bool) {
		for _, p := range parts {
			if k, ok := p(r); ok {
				return k, true
			}
		}
		return "", false
	}
}
