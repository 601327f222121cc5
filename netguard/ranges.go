package netguard

import "net/netip"

// classify names the special-purpose range ip belongs to, or returns "" for an ordinary public
// address. ip must already be unmapped and zone-free. Everything named here is refused unless allowed:
// these are the ranges through which a registered function endpoint could reach the edge's own host,
// its private network or a cloud metadata service.
func classify(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return "invalid"
	case ip.IsUnspecified():
		return "unspecified"
	case ip.IsLoopback():
		return "loopback"
	case ip.IsMulticast():
		return "multicast"
	case ip.IsLinkLocalUnicast():
		if ip == netip.AddrFrom4([4]byte{169, 254, 169, 254}) {
			return "link-local (cloud metadata)"
		}
		return "link-local"
	case ip.IsPrivate():
		return "private"
	}
	if ip.Is4() {
		b := ip.As4()
		switch {
		case b[0] == 0:
			return "this-network (0.0.0.0/8)"
		case b[0] == 100 && b[1]&0xc0 == 64:
			return "carrier-grade NAT (100.64.0.0/10)"
		case b[0] == 192 && b[1] == 0 && b[2] == 0:
			return "IETF protocol assignment (192.0.0.0/24)"
		case b[0] == 198 && b[1]&0xfe == 18:
			return "benchmarking (198.18.0.0/15)"
		case b[0] >= 240:
			return "reserved or broadcast (240.0.0.0/4)"
		}
		return ""
	}
	b := ip.As16()
	switch {
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
		return "site-local (fec0::/10)"
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1:
		return "local-use NAT64 (64:ff9b:1::/48)"
	case b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && isZero(b[4:12]):
		if r := classify(netip.AddrFrom4([4]byte(b[12:16]))); r != "" {
			return "NAT64 of " + r
		}
	case b[0] == 0x20 && b[1] == 0x02:
		if r := classify(netip.AddrFrom4([4]byte(b[2:6]))); r != "" {
			return "6to4 of " + r
		}
	case isZero(b[:12]):
		return "IPv4-compatible (::/96)"
	}
	return ""
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
