package config

import (
	"net"
	"strings"
	"time"
)

// DefaultHostsFile is the file the hosts directive reads when it names none.
const DefaultHostsFile = "/etc/hosts"

// Hosts is the hosts directive: answers from a hosts(5) file and from
// entries written in the Corefile, as CoreDNS's hosts plugin:
//
//	hosts [FILE [ZONES...]] {
//	    IP NAME...
//	    ttl SECONDS
//	    no_reverse
//	    reload DURATION
//	    fallthrough [ZONES...]
//	    fallthrough_unsupported
//	}
//
// FILE is the hosts file (default /etc/hosts; relative to the working
// directory); a missing file is not an error, it may appear later. ZONES
// limit the names answered (default the server block's zones); names of
// the file outside them are ignored. Each "IP NAME..." line of the block
// is an inline entry, served with the file's; inline entries come before
// fallthrough. ttl is the TTL of answers, 1 to 65535 (default 3600).
// no_reverse makes no PTR records from the entries. reload is how often
// the file's modification time and size are checked (default 5s, 0 never
// after the first read). fallthrough hands a name of ZONES (default every
// name) that has no entry to the next handler instead of answering
// SERVFAIL; fallthrough_unsupported, which needs fallthrough, also hands on
// queries for types other than A, AAAA and PTR of names that have entries.
type Hosts struct {
	Path  string
	Zones []string
	// Inline holds the block's entries, each "IP NAME...".
	Inline    []string
	TTL       uint32
	NoReverse bool
	Reload    time.Duration
	// Fallthrough is ["."] for a bare fallthrough, its normalised zones
	// otherwise, nil when absent.
	Fallthrough            []string
	FallthroughUnsupported bool
	Line                   int
}

// hosts parses the hosts directive described at Hosts.
func (p *parser) hosts(d directive, serverZones []string) (*Hosts, error) {
	h := &Hosts{Path: DefaultHostsFile, TTL: 3600, Reload: 5 * time.Second, Line: d.line}
	if len(d.args) > 0 {
		h.Path = d.args[0]
		var err error
		if h.Zones, err = p.normalizedZones(d.line, "hosts", d.args[1:]); err != nil {
			return nil, err
		}
	}
	if len(h.Zones) == 0 {
		h.Zones = append([]string(nil), serverZones...)
	}
	for _, o := range d.block {
		var err error
		switch o.name {
		case "ttl":
			if err = p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			n, err := p.between(o.line, o.name, o.args[0], 1, 65535)
			if err != nil {
				return nil, err
			}
			h.TTL = uint32(n)
		case "no_reverse":
			if err = p.wantArgs(o, 0, 0); err != nil {
				return nil, err
			}
			h.NoReverse = true
		case "reload":
			if err = p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			if h.Reload, err = p.duration(o.line, o.name, o.args[0], 0); err != nil {
				return nil, err
			}
		case "fallthrough":
			if h.Fallthrough, err = p.fallthroughOf(o); err != nil {
				return nil, err
			}
		case "fallthrough_unsupported":
			if err = p.wantArgs(o, 0, 0); err != nil {
				return nil, err
			}
			h.FallthroughUnsupported = true
		default:
			if !isHostsIP(o.name) {
				return nil, errorf(p.filename, o.line,
					"hosts: unknown option %q: want an entry IP NAME..., ttl, no_reverse, reload, fallthrough or fallthrough_unsupported", o.name)
			}
			if h.Fallthrough != nil {
				return nil, errorf(p.filename, o.line, "hosts: entry %q after fallthrough: write inline entries before fallthrough", o.name)
			}
			if len(o.args) == 0 {
				return nil, errorf(p.filename, o.line, "hosts: entry %q has no name: want IP NAME...", o.name)
			}
			h.Inline = append(h.Inline, strings.Join(append([]string{o.name}, o.args...), " "))
		}
	}
	if h.FallthroughUnsupported && h.Fallthrough == nil {
		return nil, errorf(p.filename, d.line, "hosts: fallthrough_unsupported needs fallthrough: add fallthrough [ZONES...] to the block")
	}
	return h, nil
}

// isHostsIP reports whether s is an address as a hosts file writes it: an
// IPv6 zone (fe80::1%eth0) is allowed and ignored.
func isHostsIP(s string) bool {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	return net.ParseIP(s) != nil
}

// normalizedZones normalises the zones of a directive's arguments.
func (p *parser) normalizedZones(line int, what string, args []string) ([]string, error) {
	var zs []string
	for _, a := range args {
		z, err := normalizeZone(a)
		if err != nil {
			return nil, errorf(p.filename, line, "%s: %v", what, err)
		}
		zs = append(zs, z)
	}
	return zs, nil
}

// fallthroughOf parses `fallthrough [ZONES...]`: ["."] without zones.
func (p *parser) fallthroughOf(o option) ([]string, error) {
	if len(o.args) == 0 {
		return []string{"."}, nil
	}
	return p.normalizedZones(o.line, o.name, o.args)
}
