package resolver

import (
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/internal/zonetest"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/zones"
)

const soaLocal = "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 0 7200 1800 86400 30"

// kubeadmOptions is the zone of the default Corefile.
func kubeadmOptions() zones.Options {
	return zones.Options{
		Zones: []string{"cluster.local.", "in-addr.arpa.", "ip6.arpa."},
		TTL:   30,
		Pods:  zones.PodsInsecure,
	}
}

func loadObjects(t testing.TB, file string) []zones.Object {
	t.Helper()
	return zonetest.Objects(t, file)
}

func newTestHandler(t testing.TB, opts zones.Options, fall []string, objs []zones.Object) *Handler {
	t.Helper()
	z := zones.New(opts)
	z.Replace(objs)
	z.MarkSynced()
	return NewHandler([]*Block{{Zones: []string{"."}, Chain: kubernetes.New(z, fall, nil), Zone: z}}, nil)
}

type dnsCase struct {
	name   string
	qname  string
	qtype  uint16
	rcode  int
	answer []string
	ns     []string
	extra  []string
}

func runCases(t *testing.T, h *Handler, cases []dnsCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := new(dns.Msg)
			r.SetQuestion(tc.qname, tc.qtype)
			m, _ := h.answer(r)
			if m.Rcode != tc.rcode {
				t.Errorf("%s %s: rcode %s, want %s\n%v", tc.qname, dns.TypeToString[tc.qtype],
					dns.RcodeToString[m.Rcode], dns.RcodeToString[tc.rcode], m)
			}
			if m.Question[0].Name != tc.qname {
				t.Errorf("question %q, want it echoed as %q", m.Question[0].Name, tc.qname)
			}
			wantAA := tc.rcode != dns.RcodeRefused && tc.rcode != dns.RcodeServerFailure
			if m.Authoritative != wantAA {
				t.Errorf("AA = %v, want %v", m.Authoritative, wantAA)
			}
			checkSection(t, "answer", m.Answer, tc.answer)
			checkSection(t, "authority", m.Ns, tc.ns)
			checkSection(t, "additional", m.Extra, tc.extra)
		})
	}
}

// checkSection compares records as text, in any order, with SOA serials
// zeroed: the serial is the time of the last change.
func checkSection(t *testing.T, section string, got []dns.RR, want []string) {
	t.Helper()
	var g, w []string
	for _, rr := range got {
		if soa, ok := rr.(*dns.SOA); ok {
			c := *soa
			c.Serial = 0
			rr = &c
		}
		g = append(g, rr.String())
	}
	for _, s := range want {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatalf("bad expected record %q: %v", s, err)
		}
		w = append(w, rr.String())
	}
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Errorf("%s section:\n got: %s\nwant: %s", section, strings.Join(g, "\n      "), strings.Join(w, "\n      "))
	}
}

func TestClusterIPService(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "A is the cluster IP", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "AAAA of a single-stack IPv4 service is NODATA", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			ns: []string{soaLocal}},
		{name: "TXT at a service is NODATA", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeTXT,
			ns: []string{soaLocal}},
		{name: "SRV for a named TCP port carries the service port and the address", qname: "_http._tcp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."},
			extra:  []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "SRV for a named UDP port", qname: "_dns._udp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_dns._udp.web.shop.svc.cluster.local. 30 IN SRV 0 100 53 web.shop.svc.cluster.local."},
			extra:  []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "SRV with the wrong protocol does not exist", qname: "_http._udp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "an unnamed port has no SRV name", qname: "_8080._tcp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "the protocol label is an empty non-terminal", qname: "_tcp.web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			ns: []string{soaLocal}},
		{name: "SRV at the service name lists every port", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"web.shop.svc.cluster.local. 30 IN SRV 0 33 80 web.shop.svc.cluster.local.",
				"web.shop.svc.cluster.local. 30 IN SRV 0 33 53 web.shop.svc.cluster.local.",
				"web.shop.svc.cluster.local. 30 IN SRV 0 33 8080 web.shop.svc.cluster.local.",
			},
			extra: []string{"web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "a ready endpoint of a ClusterIP service has a name", qname: "10-244-1-1.web.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"10-244-1-1.web.shop.svc.cluster.local. 30 IN A 10.244.1.1"}},
		{name: "a not-ready endpoint has no name", qname: "10-244-1-2.web.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "PTR of a cluster IP is the service", qname: "1.1.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.1.96.10.in-addr.arpa. 30 IN PTR web.shop.svc.cluster.local."}},
		{name: "PTR of a ready endpoint is its endpoint name", qname: "1.1.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.1.244.10.in-addr.arpa. 30 IN PTR 10-244-1-1.web.shop.svc.cluster.local."}},
		{name: "PTR of a not-ready endpoint falls through", qname: "2.1.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeRefused},
		{name: "A at a PTR name is NODATA in the reverse zone", qname: "1.1.96.10.in-addr.arpa.", qtype: dns.TypeA,
			ns: []string{"in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.in-addr.arpa. 0 7200 1800 86400 30"}},
	})
}

func TestDualStackService(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "A is the IPv4 cluster IP", qname: "dual.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"dual.shop.svc.cluster.local. 30 IN A 10.96.1.2"}},
		{name: "AAAA is the IPv6 cluster IP", qname: "dual.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"dual.shop.svc.cluster.local. 30 IN AAAA fd00:10:96::2"}},
		{name: "SRV carries both addresses as additionals", qname: "_http._tcp.dual.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{"_http._tcp.dual.shop.svc.cluster.local. 30 IN SRV 0 100 80 dual.shop.svc.cluster.local."},
			extra:  []string{"dual.shop.svc.cluster.local. 30 IN A 10.96.1.2", "dual.shop.svc.cluster.local. 30 IN AAAA fd00:10:96::2"}},
		{name: "PTR of the IPv6 cluster IP uses full nibbles", qname: "2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.1.0.0.0.0.d.f.ip6.arpa. 30 IN PTR dual.shop.svc.cluster.local."}},
	})
}

func TestHeadlessService(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "A lists ready endpoints once, without not-ready or terminating ones", qname: "db.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db.shop.svc.cluster.local. 30 IN A 10.244.2.10", "db.shop.svc.cluster.local. 30 IN A 10.244.2.11"}},
		{name: "a ready endpoint's hostname resolves", qname: "db-0.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-0.db.shop.svc.cluster.local. 30 IN A 10.244.2.10"}},
		{name: "ready unset counts as ready", qname: "db-1.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-1.db.shop.svc.cluster.local. 30 IN A 10.244.2.11"}},
		{name: "a not-ready endpoint's hostname does not exist", qname: "db-2.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "a serving but terminating endpoint is not ready", qname: "db-3.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "SRV has one record per ready endpoint, targets resolve in additional", qname: "_mysql._tcp.db.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_mysql._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 50 3306 db-0.db.shop.svc.cluster.local.",
				"_mysql._tcp.db.shop.svc.cluster.local. 30 IN SRV 0 50 3306 db-1.db.shop.svc.cluster.local.",
			},
			extra: []string{"db-0.db.shop.svc.cluster.local. 30 IN A 10.244.2.10", "db-1.db.shop.svc.cluster.local. 30 IN A 10.244.2.11"}},
		{name: "PTR of a headless endpoint is its hostname", qname: "10.2.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			answer: []string{"10.2.244.10.in-addr.arpa. 30 IN PTR db-0.db.shop.svc.cluster.local."}},
		{name: "endpoints without hostname are named by dashed address", qname: "_gossip._udp.peers.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_gossip._udp.peers.shop.svc.cluster.local. 30 IN SRV 0 33 7946 10-244-3-1.peers.shop.svc.cluster.local.",
				"_gossip._udp.peers.shop.svc.cluster.local. 30 IN SRV 0 33 7946 10-244-3-2.peers.shop.svc.cluster.local.",
				"_gossip._udp.peers.shop.svc.cluster.local. 30 IN SRV 0 33 7946 fd00-244--3-1.peers.shop.svc.cluster.local.",
			},
			extra: []string{
				"10-244-3-1.peers.shop.svc.cluster.local. 30 IN A 10.244.3.1",
				"10-244-3-2.peers.shop.svc.cluster.local. 30 IN A 10.244.3.2",
				"fd00-244--3-1.peers.shop.svc.cluster.local. 30 IN AAAA fd00:244::3:1",
			}},
		{name: "AAAA of a headless service lists its IPv6 endpoints", qname: "peers.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"peers.shop.svc.cluster.local. 30 IN AAAA fd00:244::3:1"}},
		{name: "the IPv6 endpoint name resolves", qname: "fd00-244--3-1.peers.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"fd00-244--3-1.peers.shop.svc.cluster.local. 30 IN AAAA fd00:244::3:1"}},
		{name: "PTR of an IPv6 endpoint", qname: "1.0.0.0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa.", qtype: dns.TypePTR,
			answer: []string{"1.0.0.0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa. 30 IN PTR fd00-244--3-1.peers.shop.svc.cluster.local."}},
		{name: "publishNotReadyAddresses publishes not-ready and terminating endpoints", qname: "seeds.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"seeds.shop.svc.cluster.local. 30 IN A 10.244.4.1", "seeds.shop.svc.cluster.local. 30 IN A 10.244.4.2"}},
		{name: "publishNotReadyAddresses publishes hostnames", qname: "seed-1.seeds.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"seed-1.seeds.shop.svc.cluster.local. 30 IN A 10.244.4.2"}},
		{name: "a headless service without ready endpoints is NXDOMAIN", qname: "idle.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "nor do its SRV names exist", qname: "_http._tcp.idle.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "a slice without the service-name label publishes nothing", qname: "9.9.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeRefused},
	})
}

func TestEndpointPodNames(t *testing.T) {
	opts := kubeadmOptions()
	opts.EndpointPodNames = true
	h := newTestHandler(t, opts, nil, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "an endpoint without hostname is named after its pod", qname: "peers-7f9c-abcde.peers.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"peers-7f9c-abcde.peers.shop.svc.cluster.local. 30 IN A 10.244.3.1"}},
		{name: "the dashed address is then not a name", qname: "10-244-3-1.peers.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "a hostname still wins over the pod name", qname: "db-0.db.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"db-0.db.shop.svc.cluster.local. 30 IN A 10.244.2.10"}},
		{name: "without fallthrough an unknown PTR is NXDOMAIN", qname: "9.9.244.10.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{"in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.in-addr.arpa. 0 7200 1800 86400 30"}},
	})
}

func TestExternalNameService(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	cname := "ext.shop.svc.cluster.local. 30 IN CNAME www.example.com."
	runCases(t, h, []dnsCase{
		{name: "A gets the CNAME to an outside name", qname: "ext.shop.svc.cluster.local.", qtype: dns.TypeA, answer: []string{cname}},
		{name: "AAAA gets the CNAME", qname: "ext.shop.svc.cluster.local.", qtype: dns.TypeAAAA, answer: []string{cname}},
		{name: "TXT gets the CNAME", qname: "ext.shop.svc.cluster.local.", qtype: dns.TypeTXT, answer: []string{cname}},
		{name: "CNAME gets the CNAME", qname: "ext.shop.svc.cluster.local.", qtype: dns.TypeCNAME, answer: []string{cname}},
		{name: "names below an ExternalName do not exist", qname: "_http._tcp.ext.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "an in-zone target is followed", qname: "alias.shop.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN A 10.96.1.1"}},
		{name: "an in-zone target without the type is NODATA after the CNAME", qname: "alias.shop.svc.cluster.local.", qtype: dns.TypeAAAA,
			answer: []string{"alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local."}, ns: []string{soaLocal}},
		{name: "an in-zone target that does not exist is NXDOMAIN after the CNAME", qname: "dangling.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode:  dns.RcodeNameError,
			answer: []string{"dangling.shop.svc.cluster.local. 30 IN CNAME gone.shop.svc.cluster.local."}, ns: []string{soaLocal}},
	})
}

func TestZoneStructure(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), []string{"in-addr.arpa.", "ip6.arpa."}, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "SOA at the apex", qname: "cluster.local.", qtype: dns.TypeSOA, answer: []string{soaLocal}},
		{name: "NS at the apex with the server's address", qname: "cluster.local.", qtype: dns.TypeNS,
			answer: []string{"cluster.local. 30 IN NS ns.dns.cluster.local."},
			extra:  []string{"ns.dns.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "the name server's name resolves to kube-dns", qname: "ns.dns.cluster.local.", qtype: dns.TypeA,
			answer: []string{"ns.dns.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "dns-version is the schema version", qname: "dns-version.cluster.local.", qtype: dns.TypeTXT,
			answer: []string{`dns-version.cluster.local. 30 IN TXT "1.1.0"`}},
		{name: "svc is an empty non-terminal", qname: "svc.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		{name: "a namespace with services exists", qname: "shop.svc.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		{name: "a namespace without services exists", qname: "empty-ns.svc.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		{name: "an unknown namespace does not", qname: "nope.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "an unknown service does not", qname: "nope.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "an ndots:5 search-path expansion is NXDOMAIN", qname: "web.shop.svc.cluster.local.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "names outside the zone tree are NXDOMAIN", qname: "foo.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "matching ignores case and answers in the case asked", qname: "WEB.Shop.SVC.cluster.LOCAL.", qtype: dns.TypeA,
			answer: []string{"WEB.Shop.SVC.cluster.LOCAL. 30 IN A 10.96.1.1"}},
		{name: "case variants reach headless SRV", qname: "_MySQL._TCP.db.shop.svc.cluster.local.", qtype: dns.TypeSRV,
			answer: []string{
				"_MySQL._TCP.db.shop.svc.cluster.local. 30 IN SRV 0 50 3306 db-0.db.shop.svc.cluster.local.",
				"_MySQL._TCP.db.shop.svc.cluster.local. 30 IN SRV 0 50 3306 db-1.db.shop.svc.cluster.local.",
			},
			extra: []string{"db-0.db.shop.svc.cluster.local. 30 IN A 10.244.2.10", "db-1.db.shop.svc.cluster.local. 30 IN A 10.244.2.11"}},
		{name: "names outside every zone are refused", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
		{name: "zone transfers are refused", qname: "cluster.local.", qtype: dns.TypeAXFR, rcode: dns.RcodeRefused},
	})
}

func TestPodRecords(t *testing.T) {
	objs := loadObjects(t, "testdata/cluster.yaml")
	withMode := func(m zones.PodMode) *Handler {
		o := kubeadmOptions()
		o.Pods = m
		return newTestHandler(t, o, nil, objs)
	}
	t.Run("insecure", func(t *testing.T) {
		runCases(t, withMode(zones.PodsInsecure), []dnsCase{
			{name: "a dashed IPv4 answers its address", qname: "1-2-3-4.shop.pod.cluster.local.", qtype: dns.TypeA,
				answer: []string{"1-2-3-4.shop.pod.cluster.local. 30 IN A 1.2.3.4"}},
			{name: "a dashed IPv6 answers its address", qname: "fd00-244--7-7.shop.pod.cluster.local.", qtype: dns.TypeAAAA,
				answer: []string{"fd00-244--7-7.shop.pod.cluster.local. 30 IN AAAA fd00:244::7:7"}},
			{name: "AAAA of an IPv4 pod name is NODATA", qname: "1-2-3-4.shop.pod.cluster.local.", qtype: dns.TypeAAAA,
				ns: []string{soaLocal}},
			{name: "an unknown namespace is NXDOMAIN", qname: "1-2-3-4.nope.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "a label that is no address is NXDOMAIN", qname: "not-an-ip.shop.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "the namespace under pod exists", qname: "shop.pod.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		})
	})
	t.Run("verified", func(t *testing.T) {
		runCases(t, withMode(zones.PodsVerified), []dnsCase{
			{name: "a running pod's IPv4 answers", qname: "10-244-7-7.shop.pod.cluster.local.", qtype: dns.TypeA,
				answer: []string{"10-244-7-7.shop.pod.cluster.local. 30 IN A 10.244.7.7"}},
			{name: "a running pod's IPv6 answers", qname: "fd00-244--7-7.shop.pod.cluster.local.", qtype: dns.TypeAAAA,
				answer: []string{"fd00-244--7-7.shop.pod.cluster.local. 30 IN AAAA fd00:244::7:7"}},
			{name: "an address no pod has is NXDOMAIN", qname: "1-2-3-4.shop.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "a pod's address in another namespace is NXDOMAIN", qname: "10-244-7-7.empty-ns.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "the namespace under pod exists", qname: "empty-ns.pod.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		})
	})
	t.Run("disabled", func(t *testing.T) {
		runCases(t, withMode(zones.PodsDisabled), []dnsCase{
			{name: "no pod name exists", qname: "10-244-7-7.shop.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "no namespace under pod exists", qname: "shop.pod.cluster.local.", qtype: dns.TypeA,
				rcode: dns.RcodeNameError, ns: []string{soaLocal}},
			{name: "pod itself stays an empty non-terminal", qname: "pod.cluster.local.", qtype: dns.TypeA, ns: []string{soaLocal}},
		})
	})
}

func TestNamespacesOption(t *testing.T) {
	opts := kubeadmOptions()
	opts.Namespaces = []string{"kube-system"}
	h := newTestHandler(t, opts, nil, loadObjects(t, "testdata/cluster.yaml"))
	runCases(t, h, []dnsCase{
		{name: "a listed namespace is served", qname: "kube-dns.kube-system.svc.cluster.local.", qtype: dns.TypeA,
			answer: []string{"kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"}},
		{name: "other namespaces are not", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "nor their namespace names", qname: "shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
		{name: "nor their PTRs", qname: "1.1.96.10.in-addr.arpa.", qtype: dns.TypePTR,
			rcode: dns.RcodeNameError, ns: []string{"in-addr.arpa. 30 IN SOA ns.dns.cluster.local. hostmaster.in-addr.arpa. 0 7200 1800 86400 30"}},
	})
}

func TestUnsyncedZoneAnswersServfail(t *testing.T) {
	z := zones.New(kubeadmOptions())
	h := NewHandler([]*Block{{Zones: []string{"."}, Chain: kubernetes.New(z, nil, nil), Zone: z}}, nil)
	runCases(t, h, []dnsCase{
		{name: "a cluster name is SERVFAIL, never NXDOMAIN", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeServerFailure},
		{name: "a name outside the zone keeps its handling", qname: "example.com.", qtype: dns.TypeA, rcode: dns.RcodeRefused},
	})
	z.MarkSynced()
	runCases(t, h, []dnsCase{
		{name: "after sync the same name is NXDOMAIN", qname: "web.shop.svc.cluster.local.", qtype: dns.TypeA,
			rcode: dns.RcodeNameError, ns: []string{soaLocal}},
	})
}
