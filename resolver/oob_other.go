//go:build !linux

package resolver

import (
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// queryDst reads the destination address of a query from its control
// message.
func queryDst(oob []byte) (netip.Addr, bool) {
	var cm6 ipv6.ControlMessage
	if cm6.Parse(oob) == nil && cm6.Dst != nil {
		a, ok := netip.AddrFromSlice(cm6.Dst)
		return a, ok
	}
	var cm4 ipv4.ControlMessage
	if cm4.Parse(oob) == nil && cm4.Dst != nil {
		a, ok := netip.AddrFromSlice(cm4.Dst)
		return a, ok
	}
	return netip.Addr{}, false
}
