package resolver

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin/kubernetes"
	"github.com/svcdisc/svcdisc/plugin/rewrite"
	"github.com/svcdisc/svcdisc/zones"
)

// TestFastPathNeverKeepsARewrittenReply: a rewrite inside the cluster zone
// makes the reply to one name out of another name's records, which the
// fast path's check of the asked name would not see change; the rewrite
// handler keeps such replies on the general path, and names it does not
// rewrite stay on the fast path.
func TestFastPathNeverKeepsARewrittenReply(t *testing.T) {
	c, err := config.Parse("Corefile", strings.NewReader(". {\n    rewrite name exact www.shop.svc.cluster.local web.shop.svc.cluster.local\n    forward . 127.0.0.1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	z := zones.New(kubeadmOptions())
	z.Replace(loadObjects(t, "testdata/cluster.yaml"))
	z.MarkSynced()
	rw, err := rewrite.New(c.Servers[0].Rewrites, kubernetes.New(z, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler([]*Block{{Zones: []string{"."}, Chain: rw, Zone: z}}, nil)
	out := make([]byte, dns.MaxMsgSize)
	ask := func(name string) []byte {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		b, _ := m.Pack()
		return b
	}
	for range 2 {
		if _, ok := h.ServeFast(ask("www.shop.svc.cluster.local."), out, false); ok {
			t.Fatal("the fast path answered a rewritten name")
		}
	}
	if _, ok := h.ServeFast(ask("web.shop.svc.cluster.local."), out, false); !ok {
		if _, ok := h.ServeFast(ask("web.shop.svc.cluster.local."), out, false); !ok {
			t.Error("the fast path declined a name no rule rewrites")
		}
	}
	// The general path follows the service's change at once.
	z.Update(&zones.Service{Namespace: "shop", Name: "web", Type: zones.ClusterIP, ClusterIPs: []netip.Addr{netip.MustParseAddr("10.99.0.1")}})
	var m dns.Msg
	if err := m.Unpack(general(h, ask("www.shop.svc.cluster.local."))); err != nil {
		t.Fatal(err)
	}
	if len(m.Answer) != 1 || m.Answer[0].String() != "www.shop.svc.cluster.local.\t30\tIN\tA\t10.99.0.1" {
		t.Errorf("answer %v, want www.shop.svc.cluster.local. A 10.99.0.1", m.Answer)
	}
}
