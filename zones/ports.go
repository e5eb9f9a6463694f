package zones

import (
	"encoding/binary"
	"runtime"
	"sync"
	"unsafe"
	"weak"
)

// portLists holds the one copy of each port list that Services and
// EndpointSlices share, by its key (portsKey), weakly: an entry goes when
// no object holds its list any more.
var portLists sync.Map // string → weak.Pointer[Port], the list's first element

// canonicalPorts returns the one copy of ports shared by every object that
// has an equal list: most Services of a cluster name the same few ports,
// and a list of two is 80 bytes in each Service and each EndpointSlice.
// As with canonical strings, objects never change their lists.
func canonicalPorts(ports []Port) []Port {
	if len(ports) == 0 {
		return nil
	}
	key := portsKey(ports)
	for {
		if v, ok := portLists.Load(key); ok {
			wp := v.(weak.Pointer[Port])
			if p := wp.Value(); p != nil {
				// The key spells the list, length included: the
				// allocation p begins holds exactly that many.
				return unsafe.Slice(p, len(ports))
			}
			portLists.CompareAndDelete(key, wp) // gone; its cleanup may not have run yet
			continue
		}
		own := make([]Port, len(ports))
		copy(own, ports)
		wp := weak.Make(&own[0])
		if _, loaded := portLists.LoadOrStore(key, wp); loaded {
			continue // another goroutine stored one first: take it
		}
		runtime.AddCleanup(&own[0], func(key string) { portLists.CompareAndDelete(key, wp) }, key)
		return own
	}
}

// portsKey spells a port list: each port's name, protocol and number,
// each name ended by a byte no name has.
func portsKey(ports []Port) string {
	b := make([]byte, 0, 16*len(ports))
	for _, p := range ports {
		b = append(b, p.Name...)
		b = append(b, 0)
		b = append(b, p.Protocol...)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint16(b, p.Port)
	}
	return string(b)
}
