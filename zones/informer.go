package zones

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
)

// A client-go informer keeps every object it delivered in a store of its
// own, where the zone holds the same objects already. Its reflector also
// gathers a whole listing before anything sees it: a watch-list stream
// goes into a temporary store keyed by "namespace/name", a paged list into
// one list, and the lot reaches the queue, and then the zone, at the end.
// Relisting 100,000 Services and 112,000 EndpointSlices, that was some
// 26 MB alive at once beside the zone (the objects, their keys and
// resource versions, the map, the list, the set of keys to reconcile
// with), and under a container's limit of 170 MiB it was what killed the
// process.
//
// So the source runs an informer of its own: it lists and watches through
// client-go's ListerWatcher, as a reflector does, and hands each object to
// the sink the moment it is decoded, listings included. What a listing
// needs beyond that is the set of keys it brought, to delete what the sink
// holds and the listing no longer has once its end is known; the sink
// itself says what it holds. The first listing, when the sink holds
// nothing of the kind, needs not even that, and the zone builds while the
// objects stream in rather than after.

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

// informer lists and watches one resource in one namespace ("" for every
// one), and delivers what it gets to k's sink, converted (Kube.slim).
type informer struct {
	k        *Kube
	lw       cache.ListerWatcherWithContext
	kind     Kind
	ns       string
	resource string
	held     holder
	// streams: the client speaks watch-list, so a listing is a watch that
	// sends the initial events first; else it is a list, page by page.
	streams bool

	// rv is where the next watch or listing starts, and relist says the
	// next step is a listing: at start, after the watch's resource
	// version expired, or after an error a watch cannot go on from. Only
	// the informer's own goroutine uses them.
	rv     string
	relist bool

	synced     chan struct{} // closed once the first listing reached the sink
	syncedOnce sync.Once
}

// pageSize is the length of a page when a listing is a paged list, as
// client-go's reflector asks.
const pageSize = 500

// Watch timeouts and retry delays, as client-go's reflector has them: a
// watch ends after 5 to 10 minutes and is started again from where it
// was; a failure waits 800 ms, doubled (with up to as much again at
// random) on each failure in a row, up to 30 s.
const (
	minWatchTimeout = 5 * time.Minute
	retryMin        = 800 * time.Millisecond
	retryMax        = 30 * time.Second
)

// newInformer returns an informer on lw (objects like example, in
// namespace ns or every one).
func (k *Kube) newInformer(lw cache.ListerWatcher, example runtime.Object, resource, ns string) (*informer, error) {
	kind, err := kindOf(example)
	if err != nil {
		return nil, err
	}
	held, ok := k.sink.(holder)
	if !ok {
		held = &k.tracker
	}
	return &informer{
		k:        k,
		lw:       cache.ToListerWatcherWithContext(lw),
		kind:     kind,
		ns:       strings.ToLower(ns),
		resource: resource,
		held:     held,
		streams:  !watchlist.DoesClientNotSupportWatchListSemantics(lw),
		relist:   true,
		synced:   make(chan struct{}),
	}, nil
}

// HasSynced reports whether the first listing reached the sink.
func (i *informer) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// RunWithContext lists and watches until ctx ends. A failure is retried
// after a delay that grows while failures follow each other; the sink
// keeps what it has meanwhile.
func (i *informer) RunWithContext(ctx context.Context) {
	var failures int
	for ctx.Err() == nil {
		start := time.Now()
		err := i.step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil || time.Since(start) > 2*time.Minute {
			failures = 0
		}
		if err == nil {
			continue
		}
		failures++
		wait := retryDelay(failures)
		if i.k.retry != nil {
			wait = i.k.retry(failures)
		}
		i.k.log.Warn("kubernetes: watch failed; retrying", "resource", i.resource, "namespace", i.ns,
			"relist", i.relist, "retry_in", wait.Round(time.Millisecond), "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// retryDelay is the wait after the n-th failure in a row.
func retryDelay(n int) time.Duration {
	d := retryMin << min(n-1, 6)
	d += rand.N(d) // jitter, so that informers and replicas spread out
	return min(d, retryMax)
}

// step lists if a listing is due, then watches until the watch ends.
func (i *informer) step(ctx context.Context) error {
	if i.relist {
		w, err := i.list(ctx)
		if err != nil {
			return err
		}
		i.relist = false
		if w != nil { // a watch-list: its watch goes on
			return i.watch(ctx, w)
		}
	}
	timeout := watchTimeout()
	w, err := i.lw.WatchWithContext(ctx, metav1.ListOptions{
		ResourceVersion: i.rv, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
	})
	if err != nil {
		// The API server away (connection refused) or busy: watch
		// again from rv. Anything else lists again, as a reflector does.
		if !utilnet.IsConnectionRefused(err) && !apierrors.IsTooManyRequests(err) {
			i.relistAfter(err)
		}
		return fmt.Errorf("watch %s: %w", i.resource, err)
	}
	return i.watch(ctx, w)
}

// relistAfter makes the next step a listing, from the start of history
// when rv is no longer served (expired, or ahead of a restarted API
// server's cache).
func (i *informer) relistAfter(err error) {
	i.relist = true
	if isExpired(err) || isTooLargeResourceVersion(err) {
		i.rv = ""
	}
}

func isExpired(err error) bool { return apierrors.IsResourceExpired(err) || apierrors.IsGone(err) }

func isTooLargeResourceVersion(err error) bool {
	return apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge)
}

func watchTimeout() int64 {
	return int64((minWatchTimeout + rand.N(minWatchTimeout)).Seconds())
}

// errShortWatch is a watch that ended at once without an event: the API
// server going away, say. It is retried after a delay, from where it was.
var errShortWatch = errors.New("watch ended at once, with no event")

// watch delivers the events of w until it ends, and stops it.
func (i *informer) watch(ctx context.Context, w watch.Interface) error {
	defer w.Stop()
	start, events := time.Now(), 0
	for {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return nil
		case ev, open = <-w.ResultChan():
		}
		if !open {
			if events == 0 && time.Since(start) < time.Second {
				return fmt.Errorf("watch %s: %w", i.resource, errShortWatch)
			}
			return nil
		}
		events++
		if ev.Type != watch.Error {
			// A watch's events come in the order of their versions.
			i.rv = resourceVersion(ev.Object, i.rv)
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			i.deliver(ev.Object)
		case watch.Deleted:
			i.remove(ev.Object)
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if !apierrors.IsTooManyRequests(err) && !apierrors.IsInternalError(err) {
				i.relistAfter(err)
			}
			return fmt.Errorf("watch %s: %w", i.resource, err)
		}
	}
}

// resourceVersion is obj's resource version, or def if it has none.
func resourceVersion(obj runtime.Object, def string) string {
	if m, err := meta.Accessor(obj); err == nil && m.GetResourceVersion() != "" {
		return m.GetResourceVersion()
	}
	return def
}

// list receives the whole resource: a watch-list, whose watch it returns
// once the initial events are through, or a paged list. A server that
// refuses watch-list (too old, or a proxy that strips the parameter and
// errs) is listed page by page instead. A relist (the sink holds objects
// of the kind) waits for any other informer's relist of this source to
// end: each needs its set of keys beside the zone, and the garbage of the
// objects it decodes, and the Services and EndpointSlices of a large
// cluster relist at the same moment when the API server comes back.
func (i *informer) list(ctx context.Context) (watch.Interface, error) {
	reconcile := false
	i.held.EachHeld(i.kind, i.ns, func(Key) { reconcile = true })
	if reconcile {
		// Held only while one listing runs, which ends with ctx.
		i.k.relisting.Lock()
		defer i.k.relisting.Unlock()
	}
	if i.streams {
		w, err := i.watchList(ctx, reconcile)
		if err == nil || !refusesWatchList(err) {
			return w, err
		}
		i.k.log.Warn("kubernetes: watch-list refused; listing page by page from now on", "resource", i.resource, "err", err)
		i.streams = false
	}
	return nil, i.pagedList(ctx, reconcile)
}

// refusesWatchList reports whether err is the API server's answer that
// it cannot send a watch's initial events, not a failure to retry.
func refusesWatchList(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && !isExpired(err) && !apierrors.IsTooManyRequests(err) &&
		!apierrors.IsUnauthorized(err) && !apierrors.IsForbidden(err)
}

// errNoInitialEventsEnd is a watch-list that ended before the bookmark
// that closes its initial events.
var errNoInitialEventsEnd = errors.New("watch-list ended before its initial events did")

func (i *informer) watchList(ctx context.Context, reconcile bool) (watch.Interface, error) {
	timeout := watchTimeout()
	yes := true
	opts := metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true, TimeoutSeconds: &timeout,
		ResourceVersion: i.rv, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	}
	w, err := i.lw.WatchWithContext(ctx, opts)
	if err != nil {
		if isExpired(err) || isTooLargeResourceVersion(err) {
			i.rv = ""
		}
		return nil, fmt.Errorf("watch-list %s: %w", i.resource, err)
	}
	var l *listing // begun at the first object: a watch that fails at once is no listing
	defer func() {
		if l != nil { // not whole: the watch is no use either
			l.abandon()
		}
		if w != nil {
			w.Stop()
		}
	}()
	for {
		var ev watch.Event
		var open bool
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case ev, open = <-w.ResultChan():
		}
		if !open {
			return nil, fmt.Errorf("watch-list %s: %w", i.resource, errNoInitialEventsEnd)
		}
		if l == nil && ev.Type != watch.Error {
			l = i.beginListing(reconcile)
		}
		switch ev.Type {
		case watch.Added, watch.Modified:
			l.deliver(ev.Object)
		case watch.Deleted:
			i.remove(ev.Object)
		case watch.Bookmark:
			if !initialEventsEnd(ev.Object) {
				continue
			}
			i.rv = resourceVersion(ev.Object, i.rv)
			l.finish()
			l = nil
			whole := w
			w = nil // its watch goes on
			return whole, nil
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if isExpired(err) || isTooLargeResourceVersion(err) {
				i.rv = ""
			}
			return nil, fmt.Errorf("watch-list %s: %w", i.resource, err)
		}
	}
}

func initialEventsEnd(obj runtime.Object) bool {
	m, err := meta.Accessor(obj)
	return err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true"
}

// pagedList lists the resource as it is now, a page at a time, each page
// delivered before the next is asked for.
func (i *informer) pagedList(ctx context.Context, reconcile bool) error {
	l := i.beginListing(reconcile)
	defer func() {
		if l != nil {
			l.abandon()
		}
	}()
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		list, err := i.lw.ListWithContext(ctx, opts)
		if err != nil {
			return fmt.Errorf("list %s: %w", i.resource, err)
		}
		if err := meta.EachListItem(list, func(o runtime.Object) error { l.deliver(o); return nil }); err != nil {
			return fmt.Errorf("list %s: %w", i.resource, err)
		}
		m, err := meta.ListAccessor(list)
		if err != nil {
			return fmt.Errorf("list %s: %w", i.resource, err)
		}
		if m.GetContinue() == "" {
			i.rv = m.GetResourceVersion()
			l.finish()
			l = nil
			return nil
		}
		opts.Continue = m.GetContinue()
	}
}

// listing is one listing in progress. Its objects reach the sink as they
// come; once it is whole, what the sink holds and it did not bring is
// deleted.
type listing struct {
	i *informer
	// seen are the hashes of the keys the listing brought (seenKey); nil
	// when there is nothing to reconcile (the first sync: the sink held
	// nothing of the kind). A hash, not the key: 8 bytes, not 32, for
	// each of a large cluster's 112,000 EndpointSlices. A held key whose
	// hash meets a listed one's by chance (about 10^-9 for a relist of
	// that size, with a new seed each time) stays until the next relist.
	seen  map[uint64]struct{}
	seed  maphash.Seed
	done  func() // ends KubeOptions.Listing's
	start time.Time
}

func (i *informer) beginListing(reconcile bool) *listing {
	l := &listing{i: i, done: func() {}, start: time.Now()}
	if i.k.opts.Listing != nil {
		l.done = i.k.opts.Listing()
	}
	if reconcile {
		l.seen = make(map[uint64]struct{})
		l.seed = maphash.MakeSeed()
	}
	return l
}

func (l *listing) seenKey(ns, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(ns)
	h.WriteByte('/') // no namespace holds one
	h.WriteString(name)
	return h.Sum64()
}

func (l *listing) deliver(obj runtime.Object) {
	if key, ok := l.i.deliver(obj); ok && l.seen != nil {
		l.seen[l.seenKey(key.Namespace, key.Name)] = struct{}{}
	}
}

// finish deletes what the sink holds and the listing did not bring, and
// marks the informer synced.
func (l *listing) finish() {
	if l.seen != nil {
		var gone []Key
		l.i.held.EachHeld(l.i.kind, l.i.ns, func(key Key) {
			if _, ok := l.seen[l.seenKey(key.Namespace, key.Name)]; !ok {
				gone = append(gone, key)
			}
		})
		for _, key := range gone {
			l.i.k.sink.Delete(key)
			l.i.k.tracked(key, false)
		}
		l.i.k.log.Info("kubernetes: relisted", "resource", l.i.resource, "namespace", l.i.ns,
			"objects", len(l.seen), "deleted", len(gone), "after", time.Since(l.start).Round(time.Millisecond))
	}
	l.done()
	l.i.syncedOnce.Do(func() { close(l.i.synced) })
}

// abandon ends a listing that broke off: what it delivered stays (each
// object is as recent as what it replaced); the deletions wait for the
// next whole one.
func (l *listing) abandon() { l.done() }

// deliver converts obj and hands it to the sink; it returns obj's key in
// the zone, and false for what is no object of the kind. A relisted
// object that is the very one the sink holds (the transform interned it)
// is not delivered again: nothing would change. It leaves rv alone: a
// listing's objects come in no order of their versions, and its own
// version is known at its end.
func (i *informer) deliver(obj runtime.Object) (Key, bool) {
	out, _ := i.k.slim(obj)
	s, ok := out.(*slimObject)
	if !ok {
		i.k.log.Warn("kubernetes: unexpected object skipped", "resource", i.resource, "type", fmt.Sprintf("%T", obj))
		return Key{}, false
	}
	key := s.key()
	if s.obj != nil && i.held.Holds(s.obj) {
		return key, true
	}
	i.k.apply(s)
	i.k.tracked(key, s.obj != nil)
	return key, true
}

// remove deletes obj from the sink; only its names are read.
func (i *informer) remove(obj runtime.Object) {
	m, err := meta.Accessor(obj)
	if err != nil {
		i.k.log.Warn("kubernetes: unexpected object skipped", "resource", i.resource, "type", fmt.Sprintf("%T", obj))
		return
	}
	key := newSlimObject(i.kind, m.GetNamespace(), m.GetName(), nil).key()
	i.k.sink.Delete(key)
	i.k.tracked(key, false)
}

// tracked records what the sink holds when it cannot say (keyTracker).
func (k *Kube) tracked(key Key, held bool) {
	if _, ok := k.sink.(holder); !ok {
		k.tracker.set(key, held)
	}
}
