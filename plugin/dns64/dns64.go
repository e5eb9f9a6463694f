// Package dns64 is the dns64 directive's handler (RFC 6147): IPv6-only
// clients get AAAA records synthesized from the A records of names that
// have no AAAA, inside a NAT64 prefix, so they reach IPv4-only services
// through a NAT64 gateway.
package dns64

import (
	"context"
	"net"
	"net/netip"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin"
)

// Name is the directive's name.
const Name = "dns64"

// Handler synthesizes AAAA answers.
type Handler struct {
	config.DNS64
	Next plugin.Handler
}

// Name implements plugin.Handler.
func (h *Handler) Name() string { return Name }

// ServeDNS implements plugin.Handler.
func (h *Handler) ServeDNS(ctx context.Context, st *plugin.State) *dns.Msg {
	if st.Type != dns.TypeAAAA || st.Class != dns.ClassINET {
		return plugin.Next(ctx, h.Next, st)
	}
	// The answer depends on the client's family: never kept for others.
	st.NoFast = true
	if !h.AllowIPv4 && !fromIPv6(st.Remote) {
		return plugin.Next(ctx, h.Next, st)
	}
	m := plugin.Next(ctx, h.Next, st)
	if m.Rcode != dns.RcodeSuccess || (!h.TranslateAll && hasType(m.Answer, dns.TypeAAAA)) {
		return m
	}
	ast := plugin.NewState(st.Req, st.Zone, st.Remote, st.Proto)
	ast.SetQuestion(st.Req.Question[0].Name, dns.TypeA, dns.ClassINET)
	a := plugin.Next(ctx, h.Next, ast)
	if a.Rcode != dns.RcodeSuccess || !hasType(a.Answer, dns.TypeA) {
		return m
	}
	// RFC 6147 5.1.7: no longer than the AAAA NODATA may be cached.
	ttlCap := uint32(1<<31 - 1)
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttlCap = min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	// Made-up records: not authoritative, as in CoreDNS.
	out := st.Reply()
	for _, rr := range a.Answer {
		v4, ok := rr.(*dns.A)
		if !ok {
			out.Answer = append(out.Answer, rr) // the CNAME chain
			continue
		}
		out.Answer = append(out.Answer, &dns.AAAA{
			Hdr:  dns.RR_Header{Name: v4.Hdr.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: min(v4.Hdr.Ttl, ttlCap)},
			AAAA: h.synthesize(v4.A),
		})
	}
	st.By = Name
	return out
}

// synthesize embeds a into the prefix as RFC 6052 section 2.2 lays it out:
// bits 64 to 71 stay zero.
func (h *Handler) synthesize(a net.IP) net.IP {
	v4 := a.To4()
	out := h.Prefix.Addr().As16()
	pos := h.Prefix.Bits() / 8
	for _, b := range v4 {
		if pos == 8 {
			pos++ // the "u" octet
		}
		out[pos] = b
		pos++
	}
	return net.IP(out[:])
}

func fromIPv6(a net.Addr) bool {
	var ip net.IP
	switch x := a.(type) {
	case *net.UDPAddr:
		ip = x.IP
	case *net.TCPAddr:
		ip = x.IP
	default:
		return false
	}
	addr, ok := netip.AddrFromSlice(ip)
	return ok && addr.Is6() && !addr.Is4In6()
}

func hasType(rrs []dns.RR, t uint16) bool {
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			return true
		}
	}
	return false
}

var _ plugin.Handler = (*Handler)(nil)
