package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
)

// DefaultBufSize is bufsize's default: the DNS flag day 2020 value.
const DefaultBufSize = 1232

// bufsize parses `bufsize [SIZE]`: the largest UDP reply, 512 to 4096.
func (p *parser) bufsize(d directive) (int, error) {
	if len(d.block) > 0 {
		return 0, errorf(p.filename, d.block[0].line, "bufsize: takes no block")
	}
	switch len(d.args) {
	case 0:
		return DefaultBufSize, nil
	case 1:
		return p.between(d.line, "bufsize", d.args[0], 512, 4096)
	}
	return 0, errorf(p.filename, d.line, "bufsize: want at most 1 argument (a size), got %d", len(d.args))
}

// Bind is the bind directive: `bind ADDRESS|INTERFACE… { except
// ADDRESS… }`. Repeated bind lines add up.
type Bind struct {
	Addrs, Interfaces, Except []string
}

func (p *parser) bind(d directive, b *Bind) (*Bind, error) {
	if len(d.args) == 0 {
		return nil, errorf(p.filename, d.line, "bind: want at least one address or interface")
	}
	if b == nil {
		b = &Bind{}
	}
	for _, o := range d.block {
		if o.name != "except" || len(o.args) == 0 {
			return nil, errorf(p.filename, o.line, "bind: unknown option %q: want except ADDRESS…", o.name)
		}
		for _, a := range o.args {
			if _, err := netip.ParseAddr(a); err != nil {
				return nil, errorf(p.filename, o.line, "except: %q is not an IP address", a)
			}
		}
		b.Except = append(b.Except, o.args...)
	}
	for _, a := range d.args {
		if _, err := netip.ParseAddr(a); err == nil {
			b.Addrs = append(b.Addrs, a)
			continue
		}
		if !validInterfaceName(a) {
			return nil, errorf(p.filename, d.line, "bind: %q is not an IP address or a network interface name", a)
		}
		b.Interfaces = append(b.Interfaces, a)
	}
	return b, nil
}

func validInterfaceName(s string) bool {
	if s == "" || len(s) > 15 {
		return false
	}
	for _, c := range s {
		if c == '/' || c == ' ' || c == ':' {
			return false
		}
	}
	return true
}

// Chaos is the chaos directive: `chaos [VERSION] [AUTHORS…]`. It answers
// TXT queries of class CH for version.bind, version.server, authors.bind,
// hostname.bind and id.server.
type Chaos struct {
	Version string   // default: "svcdisc-" and the version
	Authors []string // default: svcdisc's
}

func (p *parser) chaos(d directive) (*Chaos, error) {
	if len(d.block) > 0 {
		return nil, errorf(p.filename, d.block[0].line, "chaos: takes no block")
	}
	c := &Chaos{}
	if len(d.args) > 0 {
		c.Version = d.args[0]
		c.Authors = d.args[1:]
	}
	return c, nil
}

// Hosts returns the addresses to listen on: the addresses given and those
// of the interfaces named, minus the excepted ones.
func (b *Bind) Hosts() ([]string, error) {
	hosts := slices.Clone(b.Addrs)
	for _, name := range b.Interfaces {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("bind: interface %s: %w", name, err)
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			return nil, fmt.Errorf("bind: interface %s: %w", name, err)
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok {
				hosts = append(hosts, n.IP.String())
			}
		}
	}
	return slices.DeleteFunc(hosts, func(h string) bool {
		a, _ := netip.ParseAddr(h)
		return slices.ContainsFunc(b.Except, func(e string) bool {
			x, _ := netip.ParseAddr(e)
			return x == a
		})
	}), nil
}
