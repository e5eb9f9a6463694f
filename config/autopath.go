package config

import (
	"strings"

	"github.com/miekg/dns"
)

// AutoPath is the autopath directive: server-side search path completion.
//
//	autopath [ZONE…] RESOLV-CONF
//	autopath [ZONE…] @kubernetes
//
// ZONE… are the zones whose queries are completed (default: the server
// block's zones). The last argument says where the search path comes from:
// a resolv.conf-like file, whose search line is the search path of every
// client (read when the Corefile is loaded), or @kubernetes, which takes it
// from the client Pod's namespace (<ns>.svc.<zone> svc.<zone> <zone>, then
// the search domains of the host's /etc/resolv.conf, as a Pod's own
// resolv.conf has them). @kubernetes needs `pods verified` in the block's
// kubernetes directive, which watches the Pods; without it autopath loads
// with a warning and completes nothing, as in CoreDNS. It takes no block.
type AutoPath struct {
	// Zones are the zones completed, normalised.
	Zones []string
	// Kubernetes is set for @kubernetes.
	Kubernetes bool
	// ResolvConf is the file given instead, and Search its search domains,
	// lower case and fully qualified, in order.
	ResolvConf string
	Search     []string
	// Line is where the directive is.
	Line int
}

// autopath parses an autopath directive.
func (p *parser) autopath(d directive, serverZones []string) (*AutoPath, error) {
	if len(d.block) > 0 {
		return nil, errorf(p.filename, d.block[0].line, "autopath: takes no block")
	}
	if len(d.args) == 0 {
		return nil, errorf(p.filename, d.line, "autopath: want a resolv.conf file or @kubernetes as the last argument")
	}
	a := &AutoPath{Line: d.line}
	last := d.args[len(d.args)-1]
	switch {
	case last == "@kubernetes":
		a.Kubernetes = true
	case strings.HasPrefix(last, "@"):
		return nil, errorf(p.filename, d.line, "autopath: %s: only @kubernetes gives search paths (or name a resolv.conf file)", last)
	default:
		rc, err := dns.ClientConfigFromFile(last)
		if err != nil {
			return nil, errorf(p.filename, d.line, "autopath: reading %s: %v (name a resolv.conf-like file with a search line, or use @kubernetes)", last, err)
		}
		a.ResolvConf = last
		for _, s := range rc.Search {
			z, err := normalizeZone(s)
			if err != nil {
				return nil, errorf(p.filename, d.line, "autopath: %s: search domain %v", last, err)
			}
			a.Search = append(a.Search, z)
		}
		if len(a.Search) == 0 {
			p.warn(d.line, "autopath: %s has no search domains: nothing will be completed", last)
		}
	}
	for _, arg := range d.args[:len(d.args)-1] {
		zs, err := normalizeZones(arg)
		if err != nil {
			return nil, errorf(p.filename, d.line, "autopath: %v", err)
		}
		a.Zones = append(a.Zones, zs...)
	}
	if len(a.Zones) == 0 {
		a.Zones = append([]string(nil), serverZones...)
	}
	return a, nil
}

// autopathNeeds is the warning for @kubernetes without pods verified, or
// "" when the block has what autopath needs.
func autopathNeeds(srv *Server) string {
	a := srv.AutoPath
	if a == nil || !a.Kubernetes {
		return ""
	}
	if srv.Kubernetes == nil {
		return "autopath @kubernetes needs the kubernetes directive in the same server block: nothing will be completed"
	}
	if srv.Kubernetes.Pods != PodsVerified {
		return "autopath @kubernetes needs `pods verified` in the kubernetes directive (it watches the Pods that give a client's namespace): nothing will be completed"
	}
	return ""
}
