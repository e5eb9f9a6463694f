package resolver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/config"
	"github.com/svcdisc/svcdisc/plugin/hosts"
)

// A hosts file in front of the cluster zone, with fallthrough (k3s's
// default): a cluster name it handed on is kept by the fast path, and must
// be made again once the file gives that name an address.
func TestFastPathFollowsAHostsFileInFrontOfTheZone(t *testing.T) {
	h := newTestHandler(t, kubeadmOptions(), nil, loadObjects(t, "testdata/cluster.yaml"))
	b := h.blocks[0].block
	path := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(path, []byte("192.0.2.1 node-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hh, err := hosts.New(&config.Hosts{Path: path, Zones: []string{"."}, TTL: 60, Reload: 10 * time.Millisecond,
		Fallthrough: []string{"."}}, nil, b.Chain)
	if err != nil {
		t.Fatal(err)
	}
	b.Chain = hh
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go hh.Run(ctx)

	const name = "web.shop.svc.cluster.local."
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeA)
	req, _ := m.Pack()
	out := make([]byte, dns.MaxMsgSize)
	// first answers as the server does: the fast path, or else the
	// general one; it says which answered.
	first := func() (string, bool) {
		t.Helper()
		var r *dns.Msg
		n, fast := h.ServeFast(req, out, false)
		if fast {
			r = new(dns.Msg)
			if err := r.Unpack(out[:n]); err != nil {
				t.Fatal(err)
			}
		} else {
			r, _ = h.answer(m)
		}
		if len(r.Answer) == 0 {
			t.Fatalf("reply %v", r)
		}
		return r.Answer[0].(*dns.A).A.String(), fast
	}
	first() // builds and keeps the cluster zone's reply
	if got, fast := first(); !fast || got == "192.0.2.99" {
		t.Fatalf("before the change: %q (fast path %v), want the cluster's address from the fast path", got, fast)
	}
	later := time.Now().Add(time.Second) // a new modification time
	if err := os.WriteFile(path, []byte("192.0.2.99 "+name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(path, later, later)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := first()
		if got == "192.0.2.99" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fast path still answers %q after the hosts file named %s", got, name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
