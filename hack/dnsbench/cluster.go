package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
)

// spec sizes the generated cluster and query files.
type spec struct {
	Services   int // ClusterIP Services svc-<i> in ns-<i mod Namespaces>
	Namespaces int
	Headless   int // headless Services hl-<i> in ns-<i mod Namespaces>
	Endpoints  int // ready endpoints per headless Service
	Zone       string
	TTL        int
	Queries    int
	External   int // names host-<i>.example.test
	Seed       uint64
}

type port struct {
	Name     string
	Protocol string // TCP or UDP
	Port     int
}

// service is a ClusterIP Service.
type service struct {
	NS, Name string
	IP       netip.Addr
	Ports    []port
}

// headless is a headless Service with one EndpointSlice; the Service's port
// and the slice's port share a name, as a targetPort does.
type headless struct {
	NS, Name string
	Port     port // the Service's
	EPPort   port // the EndpointSlice's: what SRV answers carry
	Addrs    []netip.Addr
}

type cluster struct {
	spec
	namespaces []string
	system     []service // kubernetes and kube-dns
	services   []service
	headless   []headless
}

var (
	clusterIPs  = prefixRange(netip.MustParsePrefix("10.96.0.0/12"))
	endpointIPs = prefixRange(netip.MustParsePrefix("10.244.0.0/14"))
	// kubernetes.default and kube-dns.kube-system: never handed out.
	apiserverIP = netip.MustParseAddr("10.96.0.1")
	dnsIP       = netip.MustParseAddr("10.96.0.10")
)

func newCluster(s spec) (*cluster, error) {
	if s.Services < 1 || s.Namespaces < 1 || s.Headless < 0 || s.Endpoints < 1 || s.Queries < 1 || s.External < 1 {
		return nil, fmt.Errorf("gen: -services, -namespaces, -endpoints, -queries and -external must be positive, -headless not negative")
	}
	c := &cluster{spec: s}
	for i := range s.Namespaces {
		c.namespaces = append(c.namespaces, fmt.Sprintf("ns-%d", i))
	}
	c.system = []service{
		{NS: "default", Name: "kubernetes", IP: apiserverIP, Ports: []port{{"https", "TCP", 443}}},
		{NS: "kube-system", Name: "kube-dns", IP: dnsIP, Ports: []port{{"dns", "UDP", 53}, {"dns-tcp", "TCP", 53}, {"metrics", "TCP", 9153}}},
	}
	svcIPs := clusterIPs.skip(apiserverIP, dnsIP)
	ports := []port{{"http", "TCP", 80}, {"metrics", "TCP", 9090}}
	for i := range s.Services {
		ip, err := svcIPs.next()
		if err != nil {
			return nil, fmt.Errorf("gen: cluster IPs: %w", err)
		}
		c.services = append(c.services, service{NS: c.namespaces[i%s.Namespaces], Name: fmt.Sprintf("svc-%d", i), IP: ip, Ports: ports})
	}
	epIPs := endpointIPs.skip()
	for i := range s.Headless {
		h := headless{NS: c.namespaces[i%s.Namespaces], Name: fmt.Sprintf("hl-%d", i),
			Port: port{"http", "TCP", 80}, EPPort: port{"http", "TCP", 8080}}
		for range s.Endpoints {
			ip, err := epIPs.next()
			if err != nil {
				return nil, fmt.Errorf("gen: endpoint addresses: %w", err)
			}
			h.Addrs = append(h.Addrs, ip)
		}
		c.headless = append(c.headless, h)
	}
	return c, nil
}

// write writes every file of the benchmark under dir.
func (c *cluster) write(dir string) error {
	files := []struct {
		path string
		fn   func(io.Writer) error
	}{
		{"manifests/cluster.yaml", c.writeManifests},
		{"zone/" + c.Zone + ".db", c.writeZone},
		{"zone/empty.db", c.writeEmptyZone},
		{"upstream/example.test.db", c.writeUpstream},
		{"queries/a.txt", c.writeA},
		{"queries/nxdomain.txt", c.writeNXDomain},
		{"queries/srv.txt", c.writeSRV},
		{"queries/external.txt", c.writeExternal},
		{"info.env", c.writeInfo},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.path), f.fn); err != nil {
			return err
		}
	}
	return nil
}

// writeInfo writes shell variables describing the data for dnsbench.sh:
// sizes, and a name each server answers only once it has loaded everything.
func (c *cluster) writeInfo(w io.Writer) error {
	last := c.services[len(c.services)-1]
	endpoints := len(c.headless) * c.Endpoints
	_, err := fmt.Fprintf(w, "ZONE=%s\nTTL=%d\nNAMESPACES=%d\nSERVICES=%d\nHEADLESS=%d\nENDPOINTS=%d\nQUERIES=%d\nEXTERNAL=%d\nPROBE=%s.%s.svc.%s\nEXTERNAL_PROBE=host-0.example.test\n",
		c.Zone, c.TTL, len(c.namespaces), len(c.services), len(c.headless), endpoints, c.Queries, c.External, last.Name, last.NS, c.Zone)
	return err
}

// writeFile writes path (creating its directory) through a buffer.
func writeFile(path string, fn func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	if err := fn(bw); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}

// addrRange hands out the IPv4 addresses of a prefix in order, leaving out
// those ending in .0 or .255 and any it was told to skip.
type addrRange struct {
	cur, last uint32
	skipped   map[netip.Addr]bool
}

func prefixRange(p netip.Prefix) addrRange {
	first := u32(p.Masked().Addr())
	return addrRange{cur: first, last: first | (1<<(32-p.Bits()) - 1)}
}

func (r addrRange) skip(ips ...netip.Addr) *addrRange {
	r.skipped = make(map[netip.Addr]bool)
	for _, ip := range ips {
		r.skipped[ip] = true
	}
	return &r
}

func (r *addrRange) next() (netip.Addr, error) {
	for ; r.cur <= r.last; r.cur++ {
		ip := addr(r.cur)
		if b := byte(r.cur); b == 0 || b == 255 || r.skipped[ip] {
			continue
		}
		r.cur++
		return ip, nil
	}
	return netip.Addr{}, fmt.Errorf("range exhausted")
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
