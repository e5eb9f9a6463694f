//go:build linux

package resolver

import (
	"net/netip"
	"syscall"
	"unsafe"
)

// queryDst reads the destination address of a query from its IP_PKTINFO or
// IPV6_PKTINFO control message without allocating.
func queryDst(oob []byte) (netip.Addr, bool) {
	for len(oob) >= syscall.SizeofCmsghdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < syscall.SizeofCmsghdr || l > len(oob) {
			return netip.Addr{}, false
		}
		data := oob[cmsgAlign(syscall.SizeofCmsghdr):l]
		switch {
		case h.Level == syscall.IPPROTO_IP && h.Type == syscall.IP_PKTINFO && len(data) >= syscall.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			return netip.AddrFrom4([4]byte(data[8:12])), true
		case h.Level == syscall.IPPROTO_IPV6 && h.Type == syscall.IPV6_PKTINFO && len(data) >= syscall.SizeofInet6Pktinfo:
			// struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
			return netip.AddrFrom16([16]byte(data[0:16])), true
		}
		oob = oob[min(cmsgAlign(l), len(oob)):]
	}
	return netip.Addr{}, false
}

func cmsgAlign(n int) int {
	const a = int(unsafe.Sizeof(uintptr(0)))
	return (n + a - 1) &^ (a - 1)
}
