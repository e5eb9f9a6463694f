package forward

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
)

// ParseResolvConf returns the nameservers of the resolv.conf file at path,
// as "IP:53" ("[IPv6]:53"), in file order without duplicates. Lines that
// are not a "nameserver" with an IP address are ignored, as the C library
// does; a file without any is an error.
func ParseResolvConf(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("forward: %w", err)
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil || a.IsUnspecified() || a.IsMulticast() {
			continue
		}
		s := netip.AddrPortFrom(a.Unmap(), 53).String()
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("forward: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("forward: %s: no nameserver", path)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SelfLoop reports an upstream that is this server itself, which would
// make every forwarded query come back to us: one on the port of a listen
// address (host:port) and on its host, or, for a listen address whose host
// is empty or unspecified (every local address), on a loopback address or
// an address of a local interface. It is meant for start-up, to refuse
// "forward . /etc/resolv.conf" when resolv.conf points back at us. A
// malformed address is an error too.
func SelfLoop(upstreams []string, listen []string) error {
	type listener struct {
		ap  netip.AddrPort
		any bool
		s   string
	}
	ls := make([]listener, 0, len(listen))
	for _, s := range listen {
		ap, err := parseAddr(s, true, 53)
		if err != nil {
			return fmt.Errorf("listen address: %w", err)
		}
		ls = append(ls, listener{ap, ap.Addr().IsUnspecified(), s})
	}
	var local map[netip.Addr]bool
	for _, s := range upstreams {
		t, err := parseUpstream(s)
		if err != nil {
			return err
		}
		if t.tls {
			continue // we do not serve DNS over TLS
		}
		u := t.ap
		a := u.Addr().WithZone("")
		for _, l := range ls {
			if l.ap.Port() != u.Port() {
				continue
			}
			self := a == l.ap.Addr().WithZone("")
			if l.any && !self {
				if local == nil {
					local = localAddrs()
				}
				self = a.IsLoopback() || local[a]
			}
			if self {
				return fmt.Errorf("forward: upstream %s is this server itself (listening on %s): forwarding to it would loop", u, l.s)
			}
		}
	}
	return nil
}

// localAddrs returns the addresses of the local interfaces, without zones.
func localAddrs() map[netip.Addr]bool {
	out := make(map[netip.Addr]bool)
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return out
	}
	for _, a := range addrs {
		var ip net.IP
		switch v := a.(type) {
		case *net.IPNet:
			ip = v.IP
		case *net.IPAddr:
			ip = v.IP
		}
		if na, ok := netip.AddrFromSlice(ip); ok {
			out[na.Unmap()] = true
		}
	}
	return out
}
