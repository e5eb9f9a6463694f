package zones

import (
	"cmp"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// builder collects what one owner contributes, by owner name.
type builder map[string]*contrib

func (b builder) at(name string) *contrib {
	c := b[name]
	if c == nil {
		c = &contrib{}
		b[name] = c
	}
	return c
}

func (b builder) add(rr dns.RR) {
	c := b.at(rr.Header().Name)
	c.rrs = append(c.rrs, rr)
}

func (b builder) ent(name string) { b.at(name) }

func (z *Zone) hdr(name string, t uint16) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: z.opts.TTL}
}

func (z *Zone) addrRR(name string, ip netip.Addr) dns.RR {
	if ip.Is4() {
		return &dns.A{Hdr: z.hdr(name, dns.TypeA), A: ip.AsSlice()}
	}
	return &dns.AAAA{Hdr: z.hdr(name, dns.TypeAAAA), AAAA: ip.AsSlice()}
}

func (z *Zone) srv(name string, port uint16, target string) *dns.SRV {
	return &dns.SRV{Hdr: z.hdr(name, dns.TypeSRV), Port: port, Target: target}
}

// endpoint is one published address of a Service under its label.
type endpoint struct {
	label string
	addr  netip.Addr
}

// published is what a Service publishes from its EndpointSlices: the
// endpoints, and the (port, endpoint label) pairs of its SRV records.
type published struct {
	eps []endpoint
	// ports are the distinct ports of the slices, and srvs the pairs in
	// answer order, as indexes into ports and eps: a pair itself would be
	// 56 bytes, and a Service has one per endpoint and port.
	ports []Port
	srvs  []srvTarget
}

// srvTarget is one (port, endpoint label) pair of a headless SRV set:
// ports[port] and the label of eps[ep].
type srvTarget struct {
	ep, port uint32
}

func (p *published) srvPort(t srvTarget) Port    { return p.ports[t.port] }
func (p *published) srvLabel(t srvTarget) string { return p.eps[t.ep].label }

func (p *published) equal(o *published) bool {
	return slices.Equal(p.eps, o.eps) && slices.Equal(p.ports, o.ports) && slices.Equal(p.srvs, o.srvs)
}

// publishedEndpoints applies readiness once for a Service: the addresses DNS
// publishes, each under its label, deduplicated across slices, and the
// (port, label) pairs of its SRV records. Its slices are allocated to
// size: a view keeps them.
func (z *Zone) publishedEndpoints(svc *Service, bySlice sliceSet) published {
	type pair struct {
		port  Port
		label string
	}
	seen := make(map[endpoint]bool)
	seenSRV := make(map[pair]bool)
	var eps []endpoint
	var pairs []pair
	for _, sl := range bySlice { // in name order
		for _, ep := range sl.Endpoints {
			if !ep.Ready && !svc.PublishNotReady {
				continue
			}
			for _, a := range ep.Addresses {
				e := endpoint{label: z.endpointLabel(ep, a), addr: a}
				if !seen[e] {
					seen[e] = true
					eps = append(eps, e)
				}
				for _, p := range sl.Ports {
					t := pair{port: p, label: e.label}
					if !seenSRV[t] {
						seenSRV[t] = true
						pairs = append(pairs, t)
					}
				}
			}
		}
	}
	if len(eps) == 0 {
		return published{}
	}
	slices.SortFunc(eps, func(a, b endpoint) int {
		return cmp.Or(strings.Compare(a.label, b.label), a.addr.Compare(b.addr))
	})
	slices.SortFunc(pairs, func(a, b pair) int {
		return cmp.Or(strings.Compare(a.port.Name, b.port.Name), strings.Compare(a.port.Protocol, b.port.Protocol),
			strings.Compare(a.label, b.label), cmp.Compare(a.port.Port, b.port.Port))
	})
	out := published{eps: slices.Clone(eps)}
	if len(pairs) == 0 {
		return out
	}
	// Each label's first endpoint; eps are sorted by label.
	labelAt := make(map[string]uint32, len(eps))
	for i := len(eps) - 1; i >= 0; i-- {
		labelAt[eps[i].label] = uint32(i)
	}
	portAt := make(map[Port]uint32)
	out.srvs = make([]srvTarget, len(pairs))
	for i, t := range pairs {
		pi, ok := portAt[t.port]
		if !ok {
			pi = uint32(len(out.ports))
			portAt[t.port] = pi
			out.ports = append(out.ports, t.port)
		}
		out.srvs[i] = srvTarget{ep: labelAt[t.label], port: pi}
	}
	out.ports = slices.Clip(out.ports) // few: rounding up costs little
	return out
}

// endpointLabel is the endpoint's hostname, else (with endpoint_pod_names)
// its Pod's name when that is one DNS label, else its dashed address, which
// is stable and unique within the Service as the spec asks.
func (z *Zone) endpointLabel(ep Endpoint, a netip.Addr) string {
	if ep.Name != "" && !ep.PodName {
		return ep.Name
	}
	if ep.PodName && z.opts.EndpointPodNames && len(ep.Name) <= 63 && !strings.Contains(ep.Name, ".") {
		return ep.Name
	}
	return dashed(a)
}

// dashed is an address as one DNS label: dots or colons turned into dashes.
// A label may neither end nor begin with a dash (Go's resolver drops an
// answer naming one), so an IPv6 address ending in "::" gets a trailing
// "0", as CoreDNS does ("2001:db8::" is 2001-db8--0), and one beginning
// with "::" a leading "0" ("0--1"), which CoreDNS does not. Either still
// reads back as the same address.
func dashed(a netip.Addr) string {
	if a.Is4() {
		return strings.ReplaceAll(a.String(), ".", "-")
	}
	s := strings.ReplaceAll(a.String(), ":", "-")
	if strings.HasPrefix(s, "-") {
		s = "0" + s
	}
	if strings.HasSuffix(s, "-") {
		s += "0"
	}
	return s
}

// buildService builds every record a Service owns, in every forward zone,
// and the PTRs of its addresses.
func (z *Zone) buildService(svc *Service, bySlice sliceSet) builder {
	b := builder{}
	pub := z.publishedEndpoints(svc, bySlice)
	for _, zone := range z.fwd {
		nsName := join(svc.Namespace+".svc", zone)
		b.ent(nsName)
		z.buildServiceIn(b, svc, &pub, svc.Name+"."+nsName)
	}
	if svc.Type == ExternalName || len(z.fwd) == 0 {
		return b
	}
	base := svc.Name + "." + join(svc.Namespace+".svc", z.primary)
	for _, ip := range svc.ClusterIPs {
		z.addPTR(b, ip, base)
	}
	for _, e := range pub.eps {
		z.addPTR(b, e.addr, e.label+"."+base)
	}
	return b
}

// buildServiceIn adds the records of svc named under base, the Service's
// name in one zone.
func (z *Zone) buildServiceIn(b builder, svc *Service, pub *published, base string) {
	var srvNames []string
	addSRV := func(name string, port uint16, target string) {
		if b[name] == nil || !hasSRV(b[name].rrs) {
			srvNames = append(srvNames, name)
		}
		b.add(z.srv(name, port, target))
	}
	switch svc.Type {
	case ExternalName:
		b.add(&dns.CNAME{Hdr: z.hdr(base, dns.TypeCNAME), Target: svc.ExternalName})
		return
	case ClusterIP:
		for _, ip := range svc.ClusterIPs {
			b.add(z.addrRR(base, ip))
		}
		for _, p := range svc.Ports {
			if p.Name != "" {
				addSRV("_"+p.Name+"._"+p.Protocol+"."+base, p.Port, base)
			}
			// CoreDNS also answers SRV at the Service name, one record per
			// port, named or not; clients rely on it.
			addSRV(base, p.Port, base)
		}
	case Headless:
		for _, e := range pub.eps {
			b.add(z.addrRR(base, e.addr))
		}
		for _, t := range pub.srvs {
			port := pub.srvPort(t)
			target := pub.srvLabel(t) + "." + base
			if port.Name != "" {
				addSRV("_"+port.Name+"._"+port.Protocol+"."+base, port.Port, target)
			}
			addSRV(base, port.Port, target)
		}
	}
	// Endpoint names exist for ClusterIP Services too, as in CoreDNS, so that
	// the PTR of every published endpoint resolves back.
	for _, e := range pub.eps {
		b.add(z.addrRR(e.label+"."+base, e.addr))
	}
	// An SRV answer carries the addresses of its targets.
	for _, name := range srvNames {
		c := b[name]
		weighSRV(c.rrs)
		seen := make(map[string]bool)
		for _, rr := range c.rrs {
			srv, ok := rr.(*dns.SRV)
			if !ok || seen[srv.Target] || b[srv.Target] == nil {
				continue
			}
			seen[srv.Target] = true
			for _, a := range b[srv.Target].rrs {
				if t := a.Header().Rrtype; t == dns.TypeA || t == dns.TypeAAAA {
					c.extra = append(c.extra, a)
				}
			}
		}
	}
	// Names between a record and the Service name (_tcp.<svc>, …) exist as
	// empty non-terminals.
	suffix := "." + base
	for name := range b {
		if !strings.HasSuffix(name, suffix) {
			continue
		}
		for p := parent(name); p != base && p != ""; p = parent(p) {
			b.ent(p)
		}
	}
}

func hasSRV(rrs []dns.RR) bool {
	return slices.ContainsFunc(rrs, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeSRV })
}

// weighSRV spreads weight over an SRV set as CoreDNS does: equal shares of
// 100, all at priority 0.
func weighSRV(rrs []dns.RR) {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeSRV {
			n++
		}
	}
	if n == 0 {
		return
	}
	w := uint16(max(100/n, 1))
	for _, rr := range rrs {
		if srv, ok := rr.(*dns.SRV); ok {
			srv.Weight = w
		}
	}
}

func (z *Zone) addPTR(b builder, ip netip.Addr, target string) {
	name, err := dns.ReverseAddr(ip.String())
	if err != nil || z.Match(name) == "" {
		return
	}
	b.add(&dns.PTR{Hdr: z.hdr(name, dns.TypePTR), Ptr: target})
}

// parent drops the first label of name; "" at the root.
func parent(name string) string {
	_, rest, ok := strings.Cut(name, ".")
	if !ok || rest == "" {
		return ""
	}
	return rest
}

// buildApex builds SOA and NS at every zone apex, the schema version TXT,
// the address of the name server, and the svc and pod subtrees' roots.
func (z *Zone) buildApex() builder {
	b := builder{}
	if z.primary == "" {
		return b
	}
	nsTarget := join("ns.dns", z.primary)
	var nsAddrs []dns.RR
	if !isReverse(z.primary) {
		ips := z.opts.NSAddrs
		if svc := z.services[nsName{"kube-system", "kube-dns"}]; svc != nil && svc.Type == ClusterIP {
			ips = svc.ClusterIPs
		}
		for _, ip := range ips {
			rr := z.addrRR(nsTarget, ip)
			nsAddrs = append(nsAddrs, rr)
			b.add(rr)
		}
		b.ent(nsTarget)
	}
	soaTTL := min(z.opts.TTL, 300)
	for _, zone := range append(append([]string(nil), z.fwd...), z.rev...) {
		soa := &dns.SOA{
			Hdr:    dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: soaTTL},
			Ns:     nsTarget,
			Mbox:   join("hostmaster", zone),
			Serial: z.serial, Refresh: 7200, Retry: 1800, Expire: 86400,
			Minttl: z.opts.TTL,
		}
		b.add(soa)
		b.add(&dns.NS{Hdr: z.hdr(zone, dns.TypeNS), Ns: nsTarget})
		b.at(zone).extra = nsAddrs
		if isReverse(zone) {
			continue
		}
		b.add(&dns.TXT{Hdr: z.hdr(join("dns-version", zone), dns.TypeTXT), Txt: []string{SchemaVersion}})
		b.ent(join("svc", zone))
		b.ent(join("pod", zone))
		b.ent(join("dns", zone))
	}
	return b
}
