package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
)

// The zone file holds the records svcdisc's kubernetes plugin answers for
// the cluster (zones/records.go): SOA and NS at the apex with the name
// server's address (kube-dns's cluster IP) and the schema version TXT; for a
// ClusterIP Service its A record, an SRV per named port at
// _port._proto.<svc>, and an SRV per port at the Service name; for a headless
// Service an A per ready endpoint at the Service name and at the endpoint's
// dashed-address name, and the SRV sets, weights spread as CoreDNS does
// (100/n each). Empty non-terminals need no records. Reverse zones are left
// out: no query file asks for them.

// writeZone writes the cluster zone.
func (c *cluster) writeZone(w io.Writer) error {
	ew := &errWriter{w: w}
	c.writeApex(ew)
	for _, s := range append(append([]service(nil), c.system...), c.services...) {
		base := fmt.Sprintf("%s.%s.svc.%s.", s.Name, s.NS, c.Zone)
		ew.printf("%s\tIN\tA\t%s\n", base, s.IP)
		var atName []string
		for _, p := range s.Ports {
			ew.printf("_%s._%s.%s\tIN\tSRV\t0 100 %d %s\n", p.Name, strings.ToLower(p.Protocol), base, p.Port, base)
			rd := fmt.Sprintf("%d %s", p.Port, base)
			if !slices.Contains(atName, rd) {
				atName = append(atName, rd)
			}
		}
		// svcdisc weighs the SRV set at the Service name by its ports, two
		// ports with one number (kube-dns: dns and dns-tcp) included.
		for _, rd := range atName {
			ew.printf("%s\tIN\tSRV\t0 %d %s\n", base, weight(len(s.Ports)), rd)
		}
	}
	for _, h := range c.headless {
		base := fmt.Sprintf("%s.%s.svc.%s.", h.Name, h.NS, c.Zone)
		wt := weight(len(h.Addrs))
		for _, a := range h.Addrs {
			target := strings.ReplaceAll(a.String(), ".", "-") + "." + base
			ew.printf("%s\tIN\tA\t%s\n", base, a)
			ew.printf("%s\tIN\tA\t%s\n", target, a)
			ew.printf("_%s._%s.%s\tIN\tSRV\t0 %d %d %s\n", h.EPPort.Name, strings.ToLower(h.EPPort.Protocol), base, wt, h.EPPort.Port, target)
			ew.printf("%s\tIN\tSRV\t0 %d %d %s\n", base, wt, h.EPPort.Port, target)
		}
	}
	return ew.err
}

// writeEmptyZone writes the cluster zone with no Services: the baseline
// for the memory a server needs per record.
func (c *cluster) writeEmptyZone(w io.Writer) error {
	ew := &errWriter{w: w}
	c.writeApex(ew)
	return ew.err
}

func (c *cluster) writeApex(ew *errWriter) {
	apex := c.Zone + "."
	ns := "ns.dns." + apex
	ew.printf("$TTL %d\n", c.TTL)
	ew.printf("%s\t%d\tIN\tSOA\t%s hostmaster.%s 1 7200 1800 86400 %d\n", apex, min(c.TTL, 300), ns, apex, c.TTL)
	ew.printf("%s\tIN\tNS\t%s\n", apex, ns)
	ew.printf("%s\tIN\tA\t%s\n", ns, dnsIP)
	ew.printf("dns-version.%s\tIN\tTXT\t\"1.1.0\"\n", apex)
}

// writeUpstream writes the external zone example.test, served by the knotd
// every forward plugin sends to: host-<i> A 198.18.x.y (the benchmarking
// range, RFC 2544), TTL 300.
func (c *cluster) writeUpstream(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("$ORIGIN example.test.\n$TTL 300\n")
	ew.printf("@\tIN\tSOA\tns.example.test. hostmaster.example.test. 1 7200 1800 86400 60\n")
	ew.printf("@\tIN\tNS\tns\nns\tIN\tA\t127.0.0.1\n")
	ips := prefixRange(netip.MustParsePrefix("198.18.0.0/15")).skip()
	for i := range c.External {
		ip, err := ips.next()
		if err != nil {
			return fmt.Errorf("external addresses: %w", err)
		}
		ew.printf("host-%d\tIN\tA\t%s\n", i, ip)
	}
	return ew.err
}

// weight is CoreDNS's SRV weight for a set of n: an equal share of 100.
func weight(n int) int { return max(100/n, 1) }
