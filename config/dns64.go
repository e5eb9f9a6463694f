package config

import "net/netip"

// DNS64 is the dns64 directive (RFC 6147):
//
//	dns64 [PREFIX]
//	dns64 {
//	    prefix PREFIX
//	    translate_all
//	    allow_ipv4
//	}
//
// An AAAA query from an IPv6 client (any client with allow_ipv4) for a
// name without AAAA records is answered with AAAA records made from the
// name's A records inside PREFIX (default 64:ff9b::/96, the well-known
// prefix; lengths 32, 40, 48, 56, 64 or 96); translate_all makes them even
// when the name has AAAA records.
type DNS64 struct {
	Prefix       netip.Prefix
	TranslateAll bool
	AllowIPv4    bool
}

func (p *parser) dns64(d directive) (*DNS64, error) {
	x := &DNS64{Prefix: netip.MustParsePrefix("64:ff9b::/96")}
	if len(d.args) > 1 {
		return nil, errorf(p.filename, d.line, "dns64: want at most 1 argument (a prefix), got %d", len(d.args))
	}
	prefix := func(line int, s string) error {
		pfx, err := netip.ParsePrefix(s)
		if err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() {
			return errorf(p.filename, line, "dns64: %q is not an IPv6 prefix", s)
		}
		switch pfx.Bits() {
		case 32, 40, 48, 56, 64, 96:
		default:
			return errorf(p.filename, line, "dns64: prefix %q must be /32, /40, /48, /56, /64 or /96 (RFC 6052)", s)
		}
		x.Prefix = pfx.Masked()
		return nil
	}
	if len(d.args) == 1 {
		if err := prefix(d.line, d.args[0]); err != nil {
			return nil, err
		}
	}
	for _, o := range d.block {
		switch o.name {
		case "prefix":
			if err := p.wantArgs(o, 1, 1); err != nil {
				return nil, err
			}
			if err := prefix(o.line, o.args[0]); err != nil {
				return nil, err
			}
		case "translate_all", "allow_ipv4":
			if err := p.wantArgs(o, 0, 0); err != nil {
				return nil, err
			}
			if o.name == "translate_all" {
				x.TranslateAll = true
			} else {
				x.AllowIPv4 = true
			}
		default:
			return nil, errorf(p.filename, o.line, "dns64: unknown option %q", o.name)
		}
	}
	return x, nil
}
