package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseKey splits a server block key, [dns://]ZONE[:PORT], into its
// normalised zones and its port. ZONE may be a CIDR, which stands for the
// reverse zones of that network; an empty ZONE is the root.
func parseKey(key string) (zones []string, port string, err error) {
	if key == "" {
		return nil, "", errors.New("empty server block key")
	}
	rest := key
	if scheme, after, ok := strings.Cut(key, "://"); ok {
		if !strings.EqualFold(scheme, "dns") {
			return nil, "", fmt.Errorf("unsupported scheme %q in %q: only dns:// is supported (svcdisc serves plain DNS)", scheme+"://", key)
		}
		rest = after
	}

	host, port := rest, DefaultPort
	// A port follows the last colon; in a CIDR it must also follow the
	// mask, since IPv6 addresses are full of colons.
	if colon := strings.LastIndexByte(rest, ':'); colon >= 0 && colon > strings.IndexByte(rest, '/') {
		host = rest[:colon]
		if port, err = parsePort(rest[colon+1:]); err != nil {
			return nil, "", fmt.Errorf("%q: %w", key, err)
		}
	}
	if host == "" {
		return []string{"."}, port, nil
	}
	if zones, err = normalizeZones(host); err != nil {
		return nil, "", err
	}
	return zones, port, nil
}

// normalizeZones is normalizeZone for a zone that may be a CIDR whose
// prefix does not end on a label boundary: it stands for the reverse zones
// of each subnet that does, as in CoreDNS (10.0.0.0/17 is the 128 zones
// 0.0.10.in-addr.arpa. to 127.0.10.in-addr.arpa.).
func normalizeZones(s string) ([]string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil || !strings.Contains(s, "/") {
		z, err := normalizeZone(s)
		return []string{z}, err
	}
	p = p.Masked()
	step := 8
	if p.Addr().Is6() {
		step = 4
	}
	bits := (p.Bits() + step - 1) / step * step
	if bits-p.Bits() > 8 {
		return nil, fmt.Errorf("%q: too many reverse zones", s)
	}
	var zones []string
	for sub := netip.PrefixFrom(p.Addr(), bits); p.Contains(sub.Addr()); {
		z, err := reverseZone(sub.String())
		if err != nil {
			return nil, err
		}
		zones = append(zones, z)
		next := lastAddr(sub).Next()
		if !next.IsValid() {
			break
		}
		sub = netip.PrefixFrom(next, bits)
	}
	return zones, nil
}

// lastAddr returns the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// parsePort checks a port number and drops leading zeros, so that "053" and
// "53" are the same port when looking for duplicate blocks.
func parsePort(s string) (string, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not a number between 1 and 65535", s)
	}
	return strconv.Itoa(n), nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// normalizeZone turns a zone as written in a Corefile (a domain name in any
// case, with or without the final dot, or a CIDR) into a lower-case fully
// qualified zone name.
func normalizeZone(s string) (string, error) {
	if strings.Contains(s, "/") {
		return reverseZone(s)
	}
	z := strings.ToLower(s)
	if z == "." {
		return z, nil
	}
	name := strings.TrimSuffix(z, ".")
	// 253 characters is the longest name that fits the 255-byte wire limit.
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("%q is not a valid zone name", s)
	}
	for label := range strings.SplitSeq(name, ".") {
		if !validLabel(label) {
			return "", fmt.Errorf("%q is not a valid zone name", s)
		}
	}
	return name + ".", nil
}

// validLabel accepts the labels that can name a zone in practice: letters,
// digits, hyphens and the underscores of service labels. Anything else in a
// Corefile key is far more likely a typo than an intended zone.
func validLabel(l string) bool {
	if l == "" || len(l) > 63 {
		return false
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// reverseZone returns the in-addr.arpa. or ip6.arpa. zone of a network.
// Reverse names have one label per octet (IPv4) or nibble (IPv6), so only
// prefixes ending on such a boundary map onto a single zone.
func reverseZone(s string) (string, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid zone name or CIDR", s)
	}
	p = p.Masked()
	addr, bits := p.Addr(), p.Bits()
	var b strings.Builder
	if addr.Is4() {
		if bits%8 != 0 {
			return "", fmt.Errorf("%q: an IPv4 reverse zone needs a prefix length that is a multiple of 8", s)
		}
		octets := addr.As4()
		for i := bits/8 - 1; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(octets[i])))
			b.WriteByte('.')
		}
		b.WriteString("in-addr.arpa.")
		return b.String(), nil
	}
	if bits%4 != 0 {
		return "", fmt.Errorf("%q: an IPv6 reverse zone needs a prefix length that is a multiple of 4", s)
	}
	const hexDigits = "0123456789abcdef"
	bytes := addr.As16()
	for i := bits/4 - 1; i >= 0; i-- {
		nibble := bytes[i/2] >> 4
		if i%2 == 1 {
			nibble = bytes[i/2] & 0x0f
		}
		b.WriteByte(hexDigits[nibble])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String(), nil
}

// inZone reports whether the fully qualified name lies in zone (is zone or
// one of its subdomains), comparing case-insensitively label by label.
func inZone(name, zone string) bool {
	if zone == "." {
		return true
	}
	if len(name) < len(zone) || !strings.EqualFold(name[len(name)-len(zone):], zone) {
		return false
	}
	return len(name) == len(zone) || name[len(name)-len(zone)-1] == '.'
}

// isReverse reports whether zone lies in one of the reverse-mapping trees.
func isReverse(zone string) bool {
	return inZone(zone, "in-addr.arpa.") || inZone(zone, "ip6.arpa.")
}
