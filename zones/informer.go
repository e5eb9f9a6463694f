package zones

import (
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// A client-go shared informer keeps every object it delivered in a store
// of its own, keyed by "namespace/name": some 130 bytes an object beyond
// the object, 270 a Service of a large cluster with its EndpointSlice,
// where the zone holds the same objects already. The source runs the
// informer's parts instead (a reflector feeding a FIFO queue, and a
// process function), and the sink itself says which objects it holds,
// which is all a relist needs of a store: the objects to delete when the
// new listing no longer has them.
//
// The queue hands a listing over whole (client-go's atomic events: one
// ReplacedAll item), not as one item an object reconciled by the queue
// against a list of "namespace/name" keys. That way a relist of 100,000
// Services and 112,000 EndpointSlices makes no key string per object (the
// queue's set of the listing's keys and the held keys it asked for were
// 20 MB) and leaves no queue array of an item per object behind it (7 MB,
// kept until as many events had come after).

// holder is a sink that can say which objects it holds. A Zone is one;
// for any other sink the source keeps the keys itself (keyTracker).
type holder interface {
	// EachHeld calls f with the key of each object of kind held, in
	// namespace ns ("" for every namespace). f must not call the sink.
	EachHeld(kind Kind, ns string, f func(Key))
	// Holds reports whether the sink holds obj itself (not an equal
	// copy): delivering it again would change nothing.
	Holds(obj Object) bool
}

// keyTracker holds the keys of the objects delivered to a sink that
// cannot list what it holds (holder).
type keyTracker struct {
	mu   sync.Mutex
	keys map[Key]struct{}
}

func (t *keyTracker) EachHeld(kind Kind, ns string, f func(Key)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k := range t.keys {
		if k.Kind == kind && (ns == "" || k.Namespace == ns) {
			f(k)
		}
	}
}

func (t *keyTracker) Holds(Object) bool { return false }

func (t *keyTracker) set(k Key, held bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = make(map[Key]struct{})
	}
	if held {
		t.keys[k] = struct{}{}
	} else {
		delete(t.keys, k)
	}
}

// kindOf is the kind of the objects an informer on example delivers.
func kindOf(example runtime.Object) (Kind, error) {
	out, _ := slim(example)
	if s, ok := out.(*slimObject); ok {
		return s.kind, nil
	}
	return 0, fmt.Errorf("informer on %T: not a kind the zone consumes", example)
}

// newInformer returns a controller that lists and watches lw (objects
// like example, in namespace ns or every one), converts each object
// (k.slim) and delivers it to k's sink, keeping no store: the sink, or
// k's key tracker, knows what was delivered.
func (k *Kube) newInformer(lw cache.ListerWatcher, example runtime.Object, resource, ns string) (cache.Controller, error) {
	kind, err := kindOf(example)
	if err != nil {
		return nil, err
	}
	held, ok := k.sink.(holder)
	if !ok {
		held = &k.tracker
	}
	queue := cache.NewRealFIFOWithOptions(cache.RealFIFOOptions{
		Name:         "svcdisc " + resource,
		KeyFunction:  cache.DeletionHandlingMetaNamespaceKeyFunc,
		AtomicEvents: true, // a listing comes whole: see above
		Transformer:  k.slim,
	})
	ns = strings.ToLower(ns)
	return cache.New(&cache.Config{
		Queue:             queue,
		ListerWatcher:     lw,
		ObjectType:        example,
		ObjectDescription: resource,
		Process: func(obj any, _ bool) error {
			deltas, ok := obj.(cache.Deltas)
			if !ok {
				return fmt.Errorf("%s: unexpected queue item %T", resource, obj)
			}
			for _, d := range deltas {
				if d.Type == cache.ReplacedAll {
					info, ok := d.Object.(cache.ReplacedAllInfo)
					if !ok {
						return fmt.Errorf("%s: a listing of %T", resource, d.Object)
					}
					k.replaceAll(kind, ns, info.Objects, held)
					continue
				}
				k.process(d, held)
			}
			return nil
		},
	}), nil
}

// replaceAll makes objs (a listing of kind in namespace ns, "" for every
// one) what the sink holds of that kind: it deletes what the listing no
// longer has, then delivers the rest, as a client-go informer would (the
// deletions first). Most of a relist's objects are the very ones the sink
// holds (the transform interned them), and are not delivered again.
func (k *Kube) replaceAll(kind Kind, ns string, objs []any, held holder) {
	holds := false
	held.EachHeld(kind, ns, func(Key) { holds = true })
	if holds {
		k.deleteUnlisted(kind, ns, objs, held)
	}
	for _, o := range objs {
		k.process(cache.Delta{Type: cache.Replaced, Object: o}, held)
	}
}

// deleteUnlisted deletes the objects of kind in ns that the sink holds and
// objs does not list. At the first sync the sink holds none, and the set
// of the listing's keys (5 MB for 112,000 EndpointSlices) is not made.
func (k *Kube) deleteUnlisted(kind Kind, ns string, objs []any, held holder) {
	listed := make(map[nsName]struct{}, len(objs))
	for _, o := range objs {
		if s, ok := o.(*slimObject); ok {
			key := s.key()
			listed[nsName{key.Namespace, key.Name}] = struct{}{}
		}
	}
	var gone []Key
	held.EachHeld(kind, ns, func(key Key) {
		if _, ok := listed[nsName{key.Namespace, key.Name}]; !ok {
			gone = append(gone, key)
		}
	})
	for _, key := range gone {
		k.sink.Delete(key)
		k.tracked(key, false)
	}
}

// process delivers one change from an informer's queue to the sink.
func (k *Kube) process(d cache.Delta, held holder) {
	if d.Type == cache.Deleted {
		var key Key
		switch o := d.Object.(type) {
		case cache.DeletedFinalStateUnknown:
			s, ok := o.Obj.(*slimObject)
			if !ok {
				return
			}
			key = s.key()
		case *slimObject:
			key = o.key()
		default:
			return
		}
		k.sink.Delete(key)
		k.tracked(key, false)
		return
	}
	s, ok := d.Object.(*slimObject)
	if !ok {
		k.log.Warn("kubernetes: unexpected object skipped", "type", fmt.Sprintf("%T", d.Object))
		return
	}
	// A relist hands every object in again, most of them the very one
	// the sink holds (the transform interned them): nothing to do. (An
	// informer dropped those whose resource version had not moved.)
	if s.obj != nil && held.Holds(s.obj) {
		return
	}
	k.apply(s)
	k.tracked(s.key(), s.obj != nil)
}

// tracked records what the sink holds when it cannot say (keyTracker).
func (k *Kube) tracked(key Key, held bool) {
	if _, ok := k.sink.(holder); !ok {
		k.tracker.set(key, held)
	}
}
