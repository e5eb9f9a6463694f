// Package k8sexternal is the k8s_external directive's handler: names under
// other zones (<service>.<namespace>.<zone>) for the external addresses of
// Services (spec.externalIPs, load balancer ingress), and with headless
// the endpoints of headless Services, read from the cluster zone of the
// block's kubernetes directive. It answers A, AAAA, SRV and PTR, and SOA
// and NS at each zone's apex, as CoreDNS's k8s_external does.
package k8sexternal

import (
	"context"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
	"github.com/svcdisc/svcdisc/zones"
)

// Name is the directive's name.
const Name = "k8s_external"

// Handler answers the k8s_external zones of a server block.
type Handler struct {
	// Zones are the zones answered, lower case and fully qualified; the
	// first names the targets of PTR answers.
	Zones []string
	// Apex is the label under each zone that holds the name server's
	// names; TTL the TTL of the records made here.
	Apex string
	TTL  uint32
	// Headless answers headless Services from their endpoints.
	Headless bool
	// Fallthrough lists the zones whose nonexistent names go on to Next.
	Fallthrough []string
	Zone        *zones.Zone
	Next        plugin.Handler
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	zone := plugin.Zones(h.Zones).Matches(st.Name)
	if zone == "" {
		return plugin.Next(ctx, h.Next, st)
	}
	if !h.Zone.Synced() {
		// Never a false NXDOMAIN, as for the cluster zones.
		st.Err = errNotSynced
		return st.Error(Name, dns.RcodeServerFailure)
	}
	switch st.Type {
	case dns.TypeAXFR, dns.TypeIXFR:
		return st.Error(Name, dns.RcodeRefused)
	}
	m := st.Reply()
	m.Authoritative = true
	st.By = Name
	asked := st.Req.Question[0].Name
	if st.Name == zone {
		h.apex(m, zone, asked, st.Type)
		return m
	}
	if apex := join(h.Apex, zone); plugin.InZone(st.Name, apex) {
		h.subApex(m, zone, st.Name, asked, st.Type)
		return m
	}

	items, rcode := h.lookup(st.Name, zone, st.Type)
	if st.Type == dns.TypePTR && rcode == dns.RcodeSuccess && len(items) > 0 {
		for _, it := range items {
			m.Answer = append(m.Answer, &dns.PTR{Hdr: h.hdr(asked, dns.TypePTR, h.TTL), Ptr: it.target})
		}
		return m
	}
	if len(items) == 0 {
		if rcode == dns.RcodeNameError && h.fallsThrough(st.Name) {
			st.By = ""
			return plugin.Next(ctx, h.Next, st)
		}
		m.Rcode = rcode
		m.Ns = []dns.RR{h.soa(zone)}
		return m
	}
	switch st.Type {
	case dns.TypeA, dns.TypeAAAA:
		m.Answer = h.addresses(items, asked, st.Type)
	case dns.TypeSRV:
		m.Answer, m.Extra = h.srv(items, asked)
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{h.soa(zone)}
	}
	return m
}

type errorString string

func (e errorString) Error() string { return string(e) }

const errNotSynced = errorString("zone not synced")

func (h *Handler) fallsThrough(name string) bool {
	return slices.ContainsFunc(h.Fallthrough, func(z string) bool { return plugin.InZone(name, z) })
}

// item is one record source: an address (or a load balancer's hostname)
// of a Service or an endpoint, with a port (-1: none) and the name that
// owns the address, the target of SRV and PTR records.
type item struct {
	addr   netip.Addr
	host   string // a load balancer hostname instead of addr
	port   int
	target string
}

// lookup finds what name (below zone, not in the apex subdomain) stands
// for. The rcode is NXDOMAIN when the name does not exist and NOERROR
// when it does, though items may be empty (the namespace's own name).
func (h *Handler) lookup(name, zone string, qtype uint16) ([]item, int) {
	if qtype == dns.TypePTR {
		if a, ok := zones.ParseReverse(name); ok {
			var out []item
			for _, ref := range h.Zone.ExternalByAddr(a) {
				out = append(out, item{target: ref.Name + "." + join(ref.Namespace, h.Zones[0])})
			}
			if len(out) == 0 {
				return nil, dns.RcodeNameError
			}
			return out, dns.RcodeSuccess
		}
	}
	base := name
	if zone != "." {
		base = strings.TrimSuffix(name, "."+zone)
	}
	segs := dns.SplitDomainName(base)
	last := len(segs) - 1
	if last < 0 {
		return nil, dns.RcodeServerFailure
	}
	ns := segs[last]
	if !h.Zone.NamespaceExists(ns) {
		return nil, dns.RcodeNameError
	}
	if last == 0 {
		return nil, dns.RcodeSuccess // the namespace: no records
	}
	svcName := segs[last-1]
	var endpoint, port, proto string
	switch last {
	case 1:
	case 2:
		endpoint = strings.TrimPrefix(segs[0], "_")
	case 3:
		port, proto = strings.TrimPrefix(segs[0], "_"), strings.TrimPrefix(segs[1], "_")
	default:
		return nil, dns.RcodeNameError
	}
	v, ok := h.Zone.External(ns, svcName)
	if !ok {
		return nil, dns.RcodeNameError
	}
	svc := v.Service
	svcTarget := svc.Name + "." + join(svc.Namespace, zone)
	var out []item
	if h.Headless && len(svc.ExternalIPs())+len(svc.ExternalHosts()) == 0 && (svc.Type == zones.Headless || endpoint != "") {
		for _, e := range v.Endpoints {
			if endpoint != "" && e.Label != endpoint {
				continue
			}
			var ports []zones.Port
			for _, p := range v.Ports {
				if p.Label == e.Label {
					ports = append(ports, p.Port)
				}
			}
			if len(ports) == 0 {
				ports = []zones.Port{{}} // no port: addresses, no SRV
			}
			for _, p := range ports {
				if matchPort(port, proto, p) {
					out = append(out, item{addr: e.Addr, port: portOf(p), target: e.Label + "." + svcTarget})
				}
			}
		}
	} else {
		ports := svc.Ports
		if len(ports) == 0 {
			ports = []zones.Port{{}}
		}
		for _, p := range ports {
			if !matchPort(port, proto, p) {
				continue
			}
			for _, a := range svc.ExternalIPs() {
				out = append(out, item{addr: a, port: portOf(p), target: svcTarget})
			}
			for _, host := range svc.ExternalHosts() {
				out = append(out, item{host: host, port: portOf(p), target: svcTarget})
			}
		}
	}
	if len(out) == 0 {
		return nil, dns.RcodeNameError
	}
	if qtype == dns.TypePTR {
		return nil, dns.RcodeSuccess // a forward name: NODATA
	}
	return out, dns.RcodeSuccess
}

// matchPort matches the port and protocol labels of an SRV name ("" for
// any) against p, ignoring case.
func matchPort(port, proto string, p zones.Port) bool {
	return (port == "" || strings.EqualFold(port, p.Name)) && (proto == "" || strings.EqualFold(proto, p.Protocol))
}

func portOf(p zones.Port) int {
	if p.Port == 0 {
		return -1
	}
	return int(p.Port)
}

// addresses makes the A or AAAA answer: one record per address, and a
// CNAME per load balancer hostname (the client resolves its target).
func (h *Handler) addresses(items []item, asked string, qtype uint16) []dns.RR {
	var out []dns.RR
	seen := make(map[string]bool)
	for _, it := range items {
		if it.host != "" {
			if !seen[it.host] {
				seen[it.host] = true
				out = append(out, &dns.CNAME{Hdr: h.hdr(asked, dns.TypeCNAME, h.Zone.TTL()), Target: it.host})
			}
			continue
		}
		if it.addr.Is4() != (qtype == dns.TypeA) || seen[it.addr.String()] {
			continue
		}
		seen[it.addr.String()] = true
		out = append(out, addrRR(h.hdr(asked, qtype, h.TTL), it.addr))
	}
	return out
}

// srv makes the SRV answer and its additional addresses. Weights share 100
// among all the items, as CoreDNS does; a record without a port is left out.
func (h *Handler) srv(items []item, asked string) (answer, extra []dns.RR) {
	weight := uint16(max(100/len(items), 1))
	type key struct {
		target string
		port   int
		addr   string
	}
	seen := make(map[key]bool)
	for _, it := range items {
		if it.port < 0 {
			continue
		}
		target := it.target
		if it.host != "" {
			target = it.host
		}
		if k := (key{target: target, port: it.port}); !seen[k] {
			seen[k] = true
			answer = append(answer, &dns.SRV{Hdr: h.hdr(asked, dns.TypeSRV, h.Zone.TTL()), Weight: weight,
				Port: uint16(it.port), Target: target})
		}
		if it.host != "" {
			continue // the client resolves a hostname target
		}
		if k := (key{target: target, addr: it.addr.String()}); !seen[k] {
			seen[k] = true
			t := dns.TypeA
			if !it.addr.Is4() {
				t = dns.TypeAAAA
			}
			extra = append(extra, addrRR(h.hdr(target, t, h.TTL), it.addr))
		}
	}
	return answer, extra
}

// apex answers the zone's own name: SOA, NS with the name server's
// addresses, NODATA for the rest.
func (h *Handler) apex(m *dns.Msg, zone, asked string, qtype uint16) {
	switch qtype {
	case dns.TypeSOA:
		soa := h.soa(zone)
		soa.Hdr.Name = asked
		m.Answer = []dns.RR{soa}
	case dns.TypeNS:
		ns := join("ns1", join(h.Apex, zone))
		m.Answer = []dns.RR{&dns.NS{Hdr: h.hdr(asked, dns.TypeNS, h.TTL), Ns: ns}}
		for _, a := range h.Zone.ExternalNSAddrs() {
			t := dns.TypeA
			if !a.Is4() {
				t = dns.TypeAAAA
			}
			m.Extra = append(m.Extra, addrRR(h.hdr(ns, t, h.TTL), a))
		}
	default:
		m.Ns = []dns.RR{h.soa(zone)}
	}
}

// subApex answers the names under APEX.ZONE: APEX.ZONE exists without
// records, ns1.APEX.ZONE has the name server's addresses, nothing else
// exists.
func (h *Handler) subApex(m *dns.Msg, zone, name, asked string, qtype uint16) {
	apex := join(h.Apex, zone)
	switch name {
	case apex:
	case "ns1." + apex:
		for _, a := range h.Zone.ExternalNSAddrs() {
			if a.Is4() && qtype == dns.TypeA || !a.Is4() && qtype == dns.TypeAAAA {
				m.Answer = append(m.Answer, addrRR(h.hdr(asked, qtype, h.TTL), a))
			}
		}
	default:
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{h.soa(zone)}
	}
}

// soa is the zone's SOA: the name server is ns1.APEX.ZONE, the serial the
// cluster zone's.
func (h *Handler) soa(zone string) *dns.SOA {
	apex := join(h.Apex, zone)
	return &dns.SOA{
		Hdr:     h.hdr(zone, dns.TypeSOA, h.TTL),
		Ns:      join("ns1", apex),
		Mbox:    join("hostmaster", apex),
		Serial:  h.Zone.Serial(),
		Refresh: 7200, Retry: 1800, Expire: 86400,
		Minttl: h.TTL,
	}
}

func (h *Handler) hdr(name string, t uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
}

func addrRR(hdr dns.RR_Header, a netip.Addr) dns.RR {
	if a.Is4() {
		return &dns.A{Hdr: hdr, A: a.AsSlice()}
	}
	return &dns.AAAA{Hdr: hdr, AAAA: a.AsSlice()}
}

// join prefixes label to zone, minding the root zone.
func join(label, zone string) string {
	if zone == "." {
		return label + "."
	}
	return label + "." + zone
}

var _ plugin.Handler = (*Handler)(nil)
