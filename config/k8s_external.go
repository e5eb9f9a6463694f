package config

import (
	"slices"
	"strings"
)

// K8sExternal is the k8s_external directive: names under other zones for
// the external addresses of Services.
//
//	k8s_external [ZONE...] {
//	    apex APEX              (default dns)
//	    ttl TTL                (0..3600, default 5)
//	    headless
//	    fallthrough [ZONE...]
//	}
//
// ZONEs default to the server block's zones, and must lie in them. APEX is
// the label under each zone that holds the name server's names
// (ns1.APEX.ZONE). headless answers headless Services (and endpoint
// names) from their endpoints. It needs the kubernetes directive in the
// same server block, whose zone it reads.
type K8sExternal struct {
	Zones []string
	Apex  string
	TTL   uint32
	// Headless answers headless Services from their endpoints.
	Headless bool
	// Fallthrough lists the zones whose nonexistent names go on to the
	// next handler: ["."] for a bare fallthrough, nil when absent.
	Fallthrough []string
	Line        int
}

// DefaultK8sExternalApex is the apex label of k8s_external, as in CoreDNS.
const DefaultK8sExternalApex = "dns"

func (p *parser) k8sExternal(d directive, serverZones []string) (*K8sExternal, error) {
	e := &K8sExternal{Apex: DefaultK8sExternalApex, TTL: DefaultTTL, Line: d.line}
	if len(d.args) == 0 {
		e.Zones = slices.Clone(serverZones)
	}
	for _, a := range d.args {
		z, err := normalizeZone(a)
		if err != nil {
			return nil, errorf(p.filename, d.line, "k8s_external: %v", err)
		}
		if !slices.ContainsFunc(serverZones, func(s string) bool { return inZone(z, s) }) {
			return nil, errorf(p.filename, d.line, "k8s_external: zone %q is not inside the server block's zones (%s)",
				z, strings.Join(serverZones, ", "))
		}
		if !slices.Contains(e.Zones, z) {
			e.Zones = append(e.Zones, z)
		}
	}
	seen := make(map[string]int)
	for _, o := range d.block {
		if prev, ok := seen[o.name]; ok {
			return nil, errorf(p.filename, o.line, "%s: already set on line %d", o.name, prev)
		}
		seen[o.name] = o.line
		switch o.name {
		case "apex":
			if len(o.args) != 1 {
				return nil, errorf(p.filename, o.line, "apex: want 1 argument (a DNS label), got %d", len(o.args))
			}
			a := strings.ToLower(o.args[0])
			if a == "" || len(a) > 63 || strings.ContainsAny(a, ". \\\t") {
				return nil, errorf(p.filename, o.line, "apex: %q is not one DNS label (like dns)", o.args[0])
			}
			e.Apex = a
		case "ttl":
			if len(o.args) != 1 {
				return nil, errorf(p.filename, o.line, "ttl: want 1 argument, got %d", len(o.args))
			}
			n, err := p.between(o.line, "ttl", o.args[0], 0, 3600)
			if err != nil {
				return nil, err
			}
			e.TTL = uint32(n)
		case "headless":
			if len(o.args) != 0 {
				return nil, errorf(p.filename, o.line, "headless: want no arguments, got %d", len(o.args))
			}
			e.Headless = true
		case "fallthrough":
			if len(o.args) == 0 {
				e.Fallthrough = []string{"."}
				break
			}
			for _, a := range o.args {
				z, err := normalizeZone(a)
				if err != nil {
					return nil, errorf(p.filename, o.line, "fallthrough: %v", err)
				}
				e.Fallthrough = append(e.Fallthrough, z)
			}
		default:
			return nil, errorf(p.filename, o.line, "k8s_external: unknown option %q: want apex, ttl, headless or fallthrough", o.name)
		}
	}
	return e, nil
}
