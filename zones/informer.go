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
// process function), and the sink itself tells the queue which objects
// it holds, which is all the queue asks of a store: the keys to delete
// when a relist no longer has them.

// holder is a sink that can say which objects it holds. A Zone is one;
// for any other sink the source keeps the keys itself (keyTracker).
type holder interface {
	// HeldKeys returns the "namespace/name" keys (the name alone for a
	// Namespace) of the objects of kind held, in namespace ns ("" for
	// every namespace).
	HeldKeys(kind Kind, ns string) []string
	// Holds reports whether the sink holds obj itself (not an equal
	// copy): delivering it again would change nothing.
	Holds(obj Object) bool
}

// knownObjects is what the queue of one informer (a kind, and a
// namespace or every one) knows of the objects delivered: the
// cache.KeyListerGetter a relist reconciles against.
type knownObjects struct {
	sink holder
	kind Kind
	ns   string
}

func (k knownObjects) ListKeys() []string { return k.sink.HeldKeys(k.kind, k.ns) }

// GetByKey returns the last state the queue reports for a deleted
// object: only its key matters to the source.
func (k knownObjects) GetByKey(key string) (any, bool, error) {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil, false, err
	}
	return newSlimObject(k.kind, ns, name, "", nil), true, nil
}

// keyTracker holds the keys of the objects delivered to a sink that
// cannot list what it holds (holder).
type keyTracker struct {
	mu   sync.Mutex
	keys map[Kind]map[string]bool
}

func (t *keyTracker) HeldKeys(kind Kind, ns string) []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for key := range t.keys[kind] {
		if ns == "" || strings.HasPrefix(key, ns+"/") {
			out = append(out, key)
		}
	}
	return out
}

func (t *keyTracker) Holds(Object) bool { return false }

func (t *keyTracker) set(k Key, held bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.keys == nil {
		t.keys = make(map[Kind]map[string]bool)
	}
	m := t.keys[k.Kind]
	if m == nil {
		m = make(map[string]bool)
		t.keys[k.Kind] = m
	}
	key := k.Name
	if k.Namespace != "" {
		key = k.Namespace + "/" + k.Name
	}
	if held {
		m[key] = true
	} else {
		delete(m, key)
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
		KnownObjects: knownObjects{sink: held, kind: kind, ns: strings.ToLower(ns)},
		Transformer:  k.slim,
	})
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
				k.process(d, held)
			}
			return nil
		},
	}), nil
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
