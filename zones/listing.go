package zones

import (
	"context"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/watchlist"
)

// listingWatcher tells when an informer receives the whole of its
// resource: a list, or a watch that streams the initial events (watch-list).
// Each such listing runs between a call to begin and a call to the
// function it returned: the first sync, and every relist after the API
// server came back, when for a while the cache's objects, the new ones and
// the decoded API objects they are made from are all alive.
type listingWatcher struct {
	inner cache.ListerWatcherWithContext
	// unsupported: inner does not speak watch-list; the reflector asks.
	unsupported bool
	begin       func() (done func())
}

func newListingWatcher(lw cache.ListerWatcher, begin func() (done func())) *listingWatcher {
	return &listingWatcher{
		inner:       cache.ToListerWatcherWithContext(lw),
		unsupported: watchlist.DoesClientNotSupportWatchListSemantics(lw),
		begin:       begin,
	}
}

// IsWatchListSemanticsUnSupported passes on what the wrapped client says.
func (l *listingWatcher) IsWatchListSemanticsUnSupported() bool { return l.unsupported }

func (l *listingWatcher) List(o metav1.ListOptions) (runtime.Object, error) {
	return l.ListWithContext(context.Background(), o)
}

func (l *listingWatcher) Watch(o metav1.ListOptions) (watch.Interface, error) {
	return l.WatchWithContext(context.Background(), o)
}

// ListWithContext lists: the whole response is decoded in this call.
func (l *listingWatcher) ListWithContext(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	done := l.begin()
	defer done()
	return l.inner.ListWithContext(ctx, o)
}

// WatchWithContext watches; a watch sending the initial events is a
// listing from its first event until the bookmark that ends them has been
// handed on. One that fails before any (the API server still away, a
// retry every few seconds) is none.
func (l *listingWatcher) WatchWithContext(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
	if o.SendInitialEvents == nil || !*o.SendInitialEvents {
		return l.inner.WatchWithContext(ctx, o)
	}
	w, err := l.inner.WatchWithContext(ctx, o)
	if err != nil {
		return nil, err
	}
	iw := &initialEvents{inner: w, begin: l.begin, out: make(chan watch.Event), stop: make(chan struct{})}
	go iw.run()
	return iw, nil
}

// initialEvents passes on the events of a watch-list watch, and ends the
// listing once the initial events are through, or the watch ends.
type initialEvents struct {
	inner    watch.Interface
	begin    func() (done func())
	out      chan watch.Event
	stop     chan struct{}
	stopOnce sync.Once
}

func (w *initialEvents) run() {
	defer close(w.out)
	var done func() // set while the initial events run
	end := func() {
		if done != nil {
			done()
			done = nil
		}
	}
	defer end()
	initial := true
	for ev := range w.inner.ResultChan() {
		if initial && done == nil {
			done = w.begin()
		}
		select {
		case w.out <- ev:
		case <-w.stop:
			return
		}
		if initial && ev.Type == watch.Bookmark && initialEventsEnd(ev.Object) {
			initial = false
			end()
		}
	}
}

func initialEventsEnd(obj runtime.Object) bool {
	m, ok := obj.(metav1.Object)
	return ok && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true"
}

func (w *initialEvents) ResultChan() <-chan watch.Event { return w.out }

func (w *initialEvents) Stop() {
	w.stopOnce.Do(func() { close(w.stop) })
	w.inner.Stop()
}
