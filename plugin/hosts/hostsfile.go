package hosts

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"

	"github.com/miekg/dns"

	"github.com/svcdisc/svcdisc/plugin"
)

// table is what one hosts text (the file, or the Corefile's entries) says:
// addresses by name, wildcard names (*.example.org.) apart, and names by
// address for PTR.
type table struct {
	name4, name6 map[string][]net.IP
	wild4, wild6 map[string][]net.IP
	// addr maps an address in its canonical text form to its names.
	addr map[string][]string
}

func newTable() *table {
	return &table{
		name4: map[string][]net.IP{}, name6: map[string][]net.IP{},
		wild4: map[string][]net.IP{}, wild6: map[string][]net.IP{},
		addr: map[string][]string{},
	}
}

// entries counts the table's records, PTRs included.
func (t *table) entries() int {
	n := 0
	for _, m := range []map[string][]net.IP{t.name4, t.name6, t.wild4, t.wild6} {
		for _, ips := range m {
			n += len(ips)
		}
	}
	for _, names := range t.addr {
		n += len(names)
	}
	return n
}

// parseIP reads an address as hosts files write it, dropping an IPv6 zone.
func parseIP(s string) net.IP {
	if i := strings.IndexByte(s, '%'); i >= 0 {
		s = s[:i]
	}
	return net.ParseIP(s)
}

// parse reads hosts text: "IP NAME..." lines, "#" starting a comment.
// Lines that are not of that form are skipped, as by CoreDNS and the C
// library; names outside zones are ignored. Wildcard names make no PTR
// records, nor does any name when reverse is false.
func parse(r io.Reader, zones plugin.Zones, reverse bool) *table {
	t := newTable()
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			continue
		}
		ip := parseIP(string(f[0]))
		if ip == nil {
			continue
		}
		v4 := ip.To4() != nil
		for _, b := range f[1:] {
			name := strings.ToLower(dns.Fqdn(string(b)))
			if zones.Matches(name) == "" {
				continue
			}
			if strings.HasPrefix(name, "*.") {
				if v4 {
					t.wild4[name] = append(t.wild4[name], ip)
				} else {
					t.wild6[name] = append(t.wild6[name], ip)
				}
				continue
			}
			if v4 {
				t.name4[name] = append(t.name4[name], ip)
			} else {
				t.name6[name] = append(t.name6[name], ip)
			}
			if reverse {
				t.addr[ip.String()] = append(t.addr[ip.String()], name)
			}
		}
	}
	return t
}

// lookup returns name's addresses of one family: its own, or else those of
// the wildcard one label up (*.example.org. covers a.example.org., not
// example.org. nor b.a.example.org.).
func lookup(names, wild map[string][]net.IP, name string) []net.IP {
	if ips, ok := names[name]; ok {
		return ips
	}
	if i, end := dns.NextLabel(name, 0); !end {
		return wild["*."+name[i:]]
	}
	return nil
}

// addressOf returns the address a reverse name (in-addr.arpa. or
// ip6.arpa.) stands for in canonical text form, or "" when it stands for
// none.
func addressOf(name string) string {
	var labels []string
	v6 := false
	if rest, ok := strings.CutSuffix(name, ".in-addr.arpa."); ok {
		labels = strings.Split(rest, ".")
	} else if rest, ok := strings.CutSuffix(name, ".ip6.arpa."); ok {
		labels, v6 = strings.Split(rest, "."), true
	} else {
		return ""
	}
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	if !v6 {
		ip := net.ParseIP(strings.Join(labels, ".")).To4()
		if ip == nil {
			return ""
		}
		return ip.String()
	}
	if len(labels) != 32 {
		return ""
	}
	groups := make([]string, 0, 8)
	for i := 0; i < 32; i += 4 {
		groups = append(groups, strings.Join(labels[i:i+4], ""))
	}
	ip := net.ParseIP(strings.Join(groups, ":"))
	if ip == nil {
		return ""
	}
	return ip.String()
}
