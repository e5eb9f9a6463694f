package zones

import (
	"cmp"
	"iter"
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

// endpoint is one published address of a Service under its label, while
// a view is made; named is false when the label is the dashed address.
type endpoint struct {
	label string
	addr  netip.Addr
	named bool
}

// published is what a Service publishes from its EndpointSlices: the
// endpoints (address and label) in answer order, and the (port, endpoint
// label) pairs of its SRV records. A view keeps it for as long as the
// Service stands: a million endpoints in a large cluster, so it is packed.
type published struct {
	// addrs are the published addresses, ordered by label then address.
	addrs addrList
	// ports are the distinct ports of the slices. When every label has
	// every port (the slices that publish endpoints have the same ports,
	// distinct by name and protocol, as nearly all do), they are the
	// slices' own, shared, not copied, and the SRV pairs are each port,
	// in answer order, with each label; more.srvs is nil.
	ports []Port
	more  *morePublished // nil for most Services
}

// morePublished is what a view's endpoints need beyond their addresses
// when they have names, or the pairs of their SRV records are not the
// common product.
type morePublished struct {
	// labels are the endpoints' labels, "" where the label is the dashed
	// address; nil when every one is: a label spelt from its address is
	// spelt again when asked for, not kept.
	labels []string
	// srvs are the SRV pairs in answer order, as indexes into ports and
	// the endpoints: a pair itself would be 56 bytes, and a Service has
	// one per endpoint and port.
	srvs []srvTarget
}

// srvTarget is one (port, endpoint label) pair of a headless SRV set:
// ports[port] and the label of endpoint ep.
type srvTarget struct {
	ep, port uint32
}

func (p *published) len() int { return p.addrs.len() }

func (p *published) addr(i int) netip.Addr { return p.addrs.at(i) }

// named returns the label of endpoint i when it is not the dashed
// address.
func (p *published) named(i int) (string, bool) {
	if p.more == nil || p.more.labels == nil || p.more.labels[i] == "" {
		return "", false
	}
	return p.more.labels[i], true
}

// label is the label of endpoint i.
func (p *published) label(i int) string {
	if l, ok := p.named(i); ok {
		return l
	}
	return dashed(p.addr(i))
}

// name is the name of endpoint i under base, spelt with one allocation.
func (p *published) name(i int, base string) string {
	if l, ok := p.named(i); ok {
		return l + "." + base
	}
	var buf [64]byte
	d := appendDashed(buf[:0], p.addr(i))
	var b strings.Builder
	b.Grow(len(d) + 1 + len(base))
	b.Write(d)
	b.WriteByte('.')
	b.WriteString(base)
	return b.String()
}

// sameLabel reports whether endpoints i and j have the same label.
func (p *published) sameLabel(i, j int) bool {
	li, ni := p.named(i)
	lj, nj := p.named(j)
	switch {
	case ni && nj:
		return li == lj
	case !ni && !nj:
		return p.addr(i) == p.addr(j)
	}
	return p.label(i) == p.label(j)
}

// srvPairs yields the SRV pairs in answer order: the port, and the first
// endpoint with the label.
func (p *published) srvPairs() iter.Seq2[Port, int] {
	return func(yield func(Port, int) bool) {
		if p.more != nil && p.more.srvs != nil {
			for _, t := range p.more.srvs {
				if !yield(p.ports[t.port], int(t.ep)) {
					return
				}
			}
			return
		}
		var buf [8]Port
		ports := append(buf[:0], p.ports...)
		slices.SortFunc(ports, byNameProtocol)
		for _, port := range ports {
			for i := range p.len() {
				// Labels are in order: a repeated one is next to its first.
				if i > 0 && p.sameLabel(i, i-1) {
					continue
				}
				if !yield(port, i) {
					return
				}
			}
		}
	}
}

func (p *published) equal(o *published) bool {
	if !p.addrs.equal(o.addrs) || !slices.Equal(p.ports, o.ports) || (p.more == nil) != (o.more == nil) {
		return false
	}
	return p.more == nil || slices.Equal(p.more.labels, o.more.labels) && slices.Equal(p.more.srvs, o.more.srvs)
}

// byNameProtocol orders ports as SRV answers list them.
func byNameProtocol(a, b Port) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Protocol, b.Protocol), cmp.Compare(a.Port, b.Port))
}

// publishScratch is publishedEndpoints' working space, kept between calls
// (they run under z.mu): a first sync publishes every Service, and making
// new maps for each was a third of the build's garbage.
type publishScratch struct {
	seen    map[labelled]bool
	seenSRV map[srvPair]bool
	eps     []endpoint
	pairs   []srvPair
}

// srvPair is one (port, label) pair of an SRV set; labelled an address
// under its label.
type (
	srvPair struct {
		port  Port
		label string
	}
	labelled struct {
		label string
		addr  netip.Addr
	}
)

// scratchKeep is the most entries a scratch map or slice keeps between
// calls: one large Service must not pin its working space, nor make
// clearing the maps (which costs their size, not their use) slow for the
// small ones after it.
const scratchKeep = 256

func (sc *publishScratch) reset() {
	if len(sc.seen) > scratchKeep || len(sc.seenSRV) > scratchKeep {
		sc.seen, sc.seenSRV = nil, nil
	} else {
		clear(sc.seen)
		clear(sc.seenSRV)
	}
	if cap(sc.eps) > scratchKeep {
		sc.eps = nil
	}
	if cap(sc.pairs) > scratchKeep {
		sc.pairs = nil
	}
	clear(sc.eps) // no label strings held
	clear(sc.pairs)
}

// publishedEndpoints applies readiness once for a Service: the addresses DNS
// publishes, each under its label, deduplicated across slices, and the
// (port, label) pairs of its SRV records. Its slices are allocated to
// size: a view keeps them.
func (z *Zone) publishedEndpoints(svc *Service, bySlice sliceSet) published {
	sc := &z.scratch
	if sc.seen == nil {
		sc.seen, sc.seenSRV = make(map[labelled]bool), make(map[srvPair]bool)
	}
	defer sc.reset()
	seen, seenSRV := sc.seen, sc.seenSRV // a hostname may be an address dashed
	eps, pairs := sc.eps[:0], sc.pairs[:0]
	defer func() { sc.eps, sc.pairs = eps, pairs }()
	// The ports of the slices that publish an endpoint, while they are
	// all the same.
	var ports []Port
	uniform, first := true, true
	for _, sl := range bySlice { // in name order
		publishes := false
		for i := range sl.eps.len() {
			if !sl.eps.ready(i) && !svc.PublishNotReady {
				continue
			}
			name, podName := sl.eps.name(i)
			lo, hi := sl.eps.span(i)
			for j := lo; j < hi; j++ {
				publishes = true
				a := sl.eps.addrs.at(j)
				label, named := z.endpointLabel(name, podName, a)
				e := endpoint{label: label, addr: a, named: named}
				if k := (labelled{label, a}); !seen[k] {
					seen[k] = true
					eps = append(eps, e)
				}
				for _, p := range sl.Ports {
					t := srvPair{port: p, label: e.label}
					if !seenSRV[t] {
						seenSRV[t] = true
						pairs = append(pairs, t)
					}
				}
			}
		}
		switch {
		case !publishes:
		case first:
			ports, first = sl.Ports, false
		case !slices.Equal(ports, sl.Ports):
			uniform = false
		}
	}
	if len(eps) == 0 {
		return published{}
	}
	slices.SortFunc(eps, func(a, b endpoint) int {
		return cmp.Or(strings.Compare(a.label, b.label), a.addr.Compare(b.addr))
	})
	byPair := func(a, b srvPair) int {
		return cmp.Or(strings.Compare(a.port.Name, b.port.Name), strings.Compare(a.port.Protocol, b.port.Protocol),
			strings.Compare(a.label, b.label), cmp.Compare(a.port.Port, b.port.Port))
	}
	var out published
	var addrs addrBuilder
	var labels []string
	for i, e := range eps {
		addrs.add(e.addr)
		if e.named && labels == nil {
			labels = make([]string, len(eps))
		}
		if e.named {
			labels[i] = e.label
		}
	}
	out.addrs = addrs.list()
	if labels != nil {
		out.more = &morePublished{labels: labels}
	}
	if len(pairs) == 0 {
		return out
	}
	if uniform && len(ports) <= 8 { // srvPairs orders them on the stack
		sorted := slices.SortedFunc(slices.Values(ports), byNameProtocol)
		distinct := true
		for i := 1; i < len(sorted); i++ {
			distinct = distinct && (sorted[i].Name != sorted[i-1].Name || sorted[i].Protocol != sorted[i-1].Protocol)
		}
		if distinct {
			out.ports = ports
			return out
		}
	}
	if out.more == nil {
		out.more = &morePublished{}
	}
	slices.SortFunc(pairs, byPair)
	// Each label's first endpoint; eps are sorted by label.
	labelAt := make(map[string]uint32, len(eps))
	for i := len(eps) - 1; i >= 0; i-- {
		labelAt[eps[i].label] = uint32(i)
	}
	portAt := make(map[Port]uint32)
	out.more.srvs = make([]srvTarget, len(pairs))
	for i, t := range pairs {
		pi, ok := portAt[t.port]
		if !ok {
			pi = uint32(len(out.ports))
			portAt[t.port] = pi
			out.ports = append(out.ports, t.port)
		}
		out.more.srvs[i] = srvTarget{ep: labelAt[t.label], port: pi}
	}
	out.ports = slices.Clip(out.ports) // few: rounding up costs little
	return out
}

// endpointLabel is the label of an endpoint's address a: its hostname,
// else (with endpoint_pod_names) its Pod's name when that is one DNS
// label, else (named false) its dashed address, which is stable and
// unique within the Service as the spec asks.
func (z *Zone) endpointLabel(name string, podName bool, a netip.Addr) (label string, named bool) {
	if name != "" && !podName {
		return name, true
	}
	if podName && z.opts.EndpointPodNames && len(name) <= 63 && !strings.Contains(name, ".") {
		return name, true
	}
	return dashed(a), false
}

// dashed is an address as one DNS label: dots or colons turned into dashes.
// A label may neither end nor begin with a dash (Go's resolver drops an
// answer naming one), so an IPv6 address ending in "::" gets a trailing
// "0", as CoreDNS does ("2001:db8::" is 2001-db8--0), and one beginning
// with "::" a leading "0" ("0--1"), which CoreDNS does not. Either still
// reads back as the same address.
func dashed(a netip.Addr) string {
	var buf [64]byte
	return string(appendDashed(buf[:0], a))
}

// appendDashed appends the dashed form of a to b.
func appendDashed(b []byte, a netip.Addr) []byte {
	start := len(b)
	b = a.AppendTo(b)
	sep := byte('.')
	if a.Is6() {
		sep = ':'
	}
	for i := start; i < len(b); i++ {
		if b[i] == sep {
			b[i] = '-'
		}
	}
	if a.Is6() && b[start] == '-' {
		b = slices.Insert(b, start, '0')
	}
	if a.Is6() && b[len(b)-1] == '-' {
		b = append(b, '0')
	}
	return b
}

// buildService builds every record a Service publishing pub owns, in every
// forward zone, and the PTRs of its addresses.
func (z *Zone) buildService(svc *Service, pub *published) builder {
	b := builder{}
	for _, zone := range z.fwd {
		nsName := join(svc.Namespace+".svc", zone)
		b.ent(nsName)
		z.buildServiceIn(b, svc, pub, svc.Name+"."+nsName)
	}
	if svc.Type == ExternalName || len(z.fwd) == 0 {
		return b
	}
	base := svc.Name + "." + join(svc.Namespace+".svc", z.primary)
	for _, ip := range svc.ClusterIPs {
		z.addPTR(b, ip, base)
	}
	for i := range pub.len() {
		z.addPTR(b, pub.addr(i), pub.name(i, base))
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
		b.add(&dns.CNAME{Hdr: z.hdr(base, dns.TypeCNAME), Target: svc.ExternalName()})
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
	}
	// Endpoint names exist for ClusterIP Services too, as in CoreDNS, so that
	// the PTR of every published endpoint resolves back.
	names := make([]string, pub.len())
	for i := range names {
		names[i] = pub.name(i, base)
	}
	if svc.Type == Headless {
		for i := range pub.len() {
			b.add(z.addrRR(base, pub.addr(i)))
		}
		for port, ep := range pub.srvPairs() {
			if port.Name != "" {
				addSRV("_"+port.Name+"._"+port.Protocol+"."+base, port.Port, names[ep])
			}
			addSRV(base, port.Port, names[ep])
		}
	}
	for i, name := range names {
		b.add(z.addrRR(name, pub.addr(i)))
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
		if e := z.vi.entry(nsName{"kube-system", "kube-dns"}); e != nil && e.svc != nil && e.svc.Type == ClusterIP {
			ips = e.svc.ClusterIPs
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
