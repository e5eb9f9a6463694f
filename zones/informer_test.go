package zones

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// fakeAPI is an API server for one resource, as an informer sees it: it
// records the options of each request and answers with what the test
// says.
type fakeAPI struct {
	mu      sync.Mutex
	watches []metav1.ListOptions
	lists   []metav1.ListOptions
	watch   func(o metav1.ListOptions) (watch.Interface, error)
	list    func(o metav1.ListOptions) (runtime.Object, error)
	// calls gets a value on each request, when not nil.
	calls chan struct{}
}

func (f *fakeAPI) listerWatcher() cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
			f.mu.Lock()
			f.lists = append(f.lists, o)
			f.mu.Unlock()
			f.called()
			return f.list(o)
		},
		WatchFuncWithContext: func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
			f.mu.Lock()
			f.watches = append(f.watches, o)
			f.mu.Unlock()
			f.called()
			return f.watch(o)
		},
	}
}

func (f *fakeAPI) called() {
	if f.calls != nil {
		f.calls <- struct{}{}
	}
}

func (f *fakeAPI) requests() (watches, lists []metav1.ListOptions) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.watches), slices.Clone(f.lists)
}

func svcRV(name, rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", ResourceVersion: rv},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0." + rv}}
}

// initialEventsEndBookmark is the bookmark that ends a watch-list's
// initial events at rv.
func initialEventsEndBookmark(rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: rv,
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
}

// streamed is a watch-list stream of svcs: their events, then the
// bookmark that ends them at rv. The watch stays open after.
func streamed(rv string, svcs ...*corev1.Service) *watch.FakeWatcher {
	w := watch.NewFakeWithChanSize(len(svcs)+1, false)
	for _, s := range svcs {
		w.Add(s)
	}
	w.Action(watch.Bookmark, initialEventsEndBookmark(rv))
	return w
}

// runInformer runs an informer on api's Services for sink until the test
// ends.
func runInformer(t *testing.T, k *Kube, api *fakeAPI) *informer {
	t.Helper()
	inf, err := k.newInformer(api.listerWatcher(), &corev1.Service{}, "services", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { inf.RunWithContext(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return inf
}

// quickRetry retries at once: the tests wait for no delay.
func quickRetry(int) time.Duration { return time.Millisecond }

// eventually waits up to 5 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func sendsInitialEvents(o metav1.ListOptions) bool {
	return o.SendInitialEvents != nil && *o.SendInitialEvents
}

// An informer lists once; a watch that ends (its timeout, or the API
// server away) is started again from the last resource version it saw,
// without listing again: a relist of a large cluster is what costs the API
// server and the source most.
func TestInformerWatchesOnFromWhereItWas(t *testing.T) {
	for _, tc := range []struct {
		name string
		// second answers the first plain watch, from version 4.
		second func() (watch.Interface, error)
		want   string // the version the next watch starts from
	}{
		{"a watch that ends", func() (watch.Interface, error) {
			w := watch.NewFakeWithChanSize(1, false)
			w.Modify(svcRV("a", "5"))
			w.Stop()
			return w, nil
		}, "5"},
		{"the API server away", func() (watch.Interface, error) {
			return nil, fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		}, "4"},
		{"a watch that ends at once", func() (watch.Interface, error) {
			w := watch.NewFake()
			w.Stop()
			return w, nil
		}, "4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sink := holdingSink{&internSink{held: map[Key]Object{}}}
			api := &fakeAPI{}
			var n int
			api.watch = func(metav1.ListOptions) (watch.Interface, error) {
				n++
				switch n {
				case 1: // the listing; its watch goes on after the bookmark, then ends
					w := watch.NewFakeWithChanSize(4, false)
					w.Add(svcRV("a", "2"))
					w.Add(svcRV("b", "3"))
					w.Action(watch.Bookmark, initialEventsEndBookmark("3"))
					w.Modify(svcRV("b", "4"))
					w.Stop()
					return w, nil
				case 2:
					return tc.second()
				}
				return watch.NewFake(), nil // stays open, quiet
			}
			inf := runInformer(t, &Kube{sink: sink, log: slog.New(slog.DiscardHandler), retry: quickRetry}, api)
			eventually(t, "the watch after the second", func() bool {
				w, _ := api.requests()
				return len(w) == 3
			})
			watches, lists := api.requests()
			if !inf.HasSynced() {
				t.Error("not synced after the listing")
			}
			if len(lists) != 0 {
				t.Errorf("listed %d times; the server streams", len(lists))
			}
			if o := watches[0]; !sendsInitialEvents(o) || o.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan ||
				!o.AllowWatchBookmarks || o.ResourceVersion != "" {
				t.Errorf("first request %+v, want a watch-list of the newest version", o)
			}
			if o := watches[1]; sendsInitialEvents(o) || o.ResourceVersion != "4" || !o.AllowWatchBookmarks ||
				o.TimeoutSeconds == nil || *o.TimeoutSeconds < 300 || *o.TimeoutSeconds > 600 {
				t.Errorf("after the listing's watch ended: %+v, want a watch from 4 with bookmarks, ending in 5 to 10 minutes", o)
			}
			if o := watches[2]; sendsInitialEvents(o) || o.ResourceVersion != tc.want {
				t.Errorf("after %s: %+v, want a watch from %s, not a relist", tc.name, o, tc.want)
			}
			want := []string{"update Service ns/a", "update Service ns/b", "update Service ns/b"}
			if tc.want == "5" {
				want = append(want, "update Service ns/a")
			}
			if got := sink.log(); !slices.Equal(got, want) {
				t.Errorf("sink got %q, want %q", got, want)
			}
		})
	}
}

// When the watch's resource version is gone (the API server restarted,
// its history compacted), the informer lists again: a watch-list from the
// newest version. What the sink holds and the listing no longer has is
// deleted once the listing is whole; a listing broken off deletes nothing.
func TestInformerRelistsAndDeletesOnlyAfterAWholeListing(t *testing.T) {
	sink := holdingSink{&internSink{held: map[Key]Object{}}}
	api := &fakeAPI{}
	watches := make(chan *watch.FakeWatcher, 10)
	var n int
	api.watch = func(o metav1.ListOptions) (watch.Interface, error) {
		n++
		var w *watch.FakeWatcher
		switch n {
		case 1:
			w = streamed("2", svcRV("a", "1"), svcRV("b", "2"))
		case 2: // broken before its bookmark
			w = watch.NewFakeWithChanSize(2, false)
			w.Add(svcRV("a", "7"))
			w.Stop()
		default:
			w = streamed("8", svcRV("a", "7"), svcRV("c", "8"))
		}
		watches <- w
		return w, nil
	}
	var logs lockedBuffer
	k := &Kube{sink: sink, log: slog.New(slog.NewTextHandler(&logs, nil)), retry: quickRetry}
	runInformer(t, k, api)
	w := <-watches
	eventually(t, "the first listing", func() bool { return len(sink.log()) == 2 })
	w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired, Message: "too old"})
	<-watches // broken off
	eventually(t, "the whole relist", func() bool { return len(sink.log()) == 5 })
	want := []string{"update Service ns/a", "update Service ns/b", // the first listing
		"update Service ns/a",                        // the broken one: a is as new as it gets
		"update Service ns/c", "delete Service ns/b"} // the whole one: a is held already
	if got := sink.log(); !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	watchOpts, _ := api.requests()
	for i, o := range watchOpts[1:] {
		if !sendsInitialEvents(o) || o.ResourceVersion != "" {
			t.Errorf("relist %d: %+v, want a watch-list from the newest version", i+1, o)
		}
	}
	// Operators see each whole relist, and what it deleted.
	eventually(t, "the relist logged", func() bool {
		return strings.Contains(logs.String(), `msg="kubernetes: relisted" resource=services namespace="" objects=2 deleted=1`)
	})
	if n := strings.Count(logs.String(), "kubernetes: relisted"); n != 1 {
		t.Errorf("%d relists logged, want the whole one only:\n%s", n, logs.String())
	}
}

// lockedBuffer is a bytes.Buffer that a logger may write while a test
// reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An API server that refuses watch-list (older ones, or a proxy that
// strips the parameter) is listed a page at a time, each page delivered
// before the next is asked for, and watched from the list's version.
func TestInformerListsPageByPageWhenWatchListIsRefused(t *testing.T) {
	sink := holdingSink{&internSink{held: map[Key]Object{}}}
	api := &fakeAPI{}
	api.watch = func(o metav1.ListOptions) (watch.Interface, error) {
		if sendsInitialEvents(o) {
			return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Service"}, "",
				nil) // 422, as an API server without the feature answers
		}
		return watch.NewFake(), nil
	}
	pages := map[string]*corev1.ServiceList{
		"":   {ListMeta: metav1.ListMeta{Continue: "p2"}, Items: []corev1.Service{*svcRV("a", "1"), *svcRV("b", "2")}},
		"p2": {ListMeta: metav1.ListMeta{ResourceVersion: "9"}, Items: []corev1.Service{*svcRV("c", "3")}},
	}
	api.list = func(o metav1.ListOptions) (runtime.Object, error) {
		if o.Continue == "p2" && len(sink.log()) != 2 {
			return nil, errors.New("second page asked for before the first reached the sink")
		}
		return pages[o.Continue], nil
	}
	inf := runInformer(t, &Kube{sink: sink, log: slog.New(slog.DiscardHandler)}, api)
	eventually(t, "the watch after the list", func() bool {
		w, _ := api.requests()
		return len(w) == 2
	})
	if !inf.HasSynced() {
		t.Error("not synced after the paged list")
	}
	want := []string{"update Service ns/a", "update Service ns/b", "update Service ns/c"}
	if got := sink.log(); !slices.Equal(got, want) {
		t.Errorf("sink got %q, want %q", got, want)
	}
	watches, lists := api.requests()
	if len(lists) != 2 || lists[0].Limit != pageSize || lists[1].Continue != "p2" || lists[1].Limit != pageSize {
		t.Errorf("lists %+v, want two pages of %d", lists, pageSize)
	}
	if o := watches[1]; sendsInitialEvents(o) || o.ResourceVersion != "9" {
		t.Errorf("watch after the list: %+v, want one from the list's version 9", o)
	}
}

// KubeOptions.Listing runs around each listing: the first, each relist,
// a paged list, and a watch-list broken midway; a watch-list that fails
// before its first event is none.
func TestListingHookRunsAroundEachListing(t *testing.T) {
	var mu sync.Mutex
	var begun, ended int
	hook := func() func() {
		mu.Lock()
		defer mu.Unlock()
		begun++
		return func() {
			mu.Lock()
			defer mu.Unlock()
			ended++
		}
	}
	counts := func() [2]int {
		mu.Lock()
		defer mu.Unlock()
		return [2]int{begun, ended}
	}
	sink := holdingSink{&internSink{held: map[Key]Object{}}}
	api := &fakeAPI{calls: make(chan struct{})}
	var n int
	var last *watch.FakeWatcher
	api.watch = func(o metav1.ListOptions) (watch.Interface, error) {
		n++
		switch n {
		case 1: // the first listing
			last = streamed("1", svcRV("a", "1"))
			return last, nil
		case 2: // after a 410: fails before any event
			return nil, fmt.Errorf("dial: %w", syscall.ECONNREFUSED)
		case 3: // broken midway
			w := watch.NewFakeWithChanSize(1, false)
			w.Add(svcRV("a", "1"))
			w.Stop()
			return w, nil
		case 4: // refused: listed page by page
			return nil, apierrors.NewBadRequest("sendInitialEvents not supported")
		}
		last = watch.NewFake()
		return last, nil
	}
	api.list = func(metav1.ListOptions) (runtime.Object, error) {
		return &corev1.ServiceList{ListMeta: metav1.ListMeta{ResourceVersion: "2"}, Items: []corev1.Service{*svcRV("a", "2")}}, nil
	}
	runInformer(t, &Kube{sink: sink, opts: KubeOptions{Listing: hook}, log: slog.New(slog.DiscardHandler), retry: quickRetry}, api)
	<-api.calls
	eventually(t, "the first listing", func() bool { return counts() == [2]int{1, 1} })
	last.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
	for range 4 { // the three failed or refused listings, then the list
		<-api.calls
	}
	<-api.calls // the watch after the list
	if got := counts(); got != [2]int{3, 3} {
		t.Errorf("listings begun, ended: %v, want [3 3]: the first, the broken one, the paged list", got)
	}
}

// Relists of one source run one at a time: when the API server comes
// back, its Services and EndpointSlices relist at the same moment, and
// each holds the garbage of what it decodes and the keys it saw.
func TestRelistsOfOneSourceRunOneAtATime(t *testing.T) {
	sink := holdingSink{&internSink{held: map[Key]Object{}}}
	k := &Kube{sink: sink, log: slog.New(slog.DiscardHandler), retry: quickRetry}
	slice := func(rv string) runtime.Object {
		return &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "a-1", Namespace: "ns", ResourceVersion: rv,
			Labels: map[string]string{discoveryv1.LabelServiceName: "a"}}, AddressType: discoveryv1.AddressTypeIPv4}
	}
	svc := func(rv string) runtime.Object { return svcRV("a", rv) }
	var relists []chan *watch.FakeWatcher
	var firsts []*watch.FakeWatcher
	for _, r := range []struct {
		example runtime.Object
		obj     func(rv string) runtime.Object
	}{{&corev1.Service{}, svc}, {&discoveryv1.EndpointSlice{}, slice}} {
		api := &fakeAPI{}
		first := watch.NewFakeWithChanSize(2, false)
		first.Add(r.obj("1"))
		first.Action(watch.Bookmark, initialEventsEndBookmark("1"))
		relist := make(chan *watch.FakeWatcher, 10)
		var n int
		api.watch = func(o metav1.ListOptions) (watch.Interface, error) {
			n++
			if n == 1 {
				return first, nil
			}
			// A relist streams one object and waits for the test.
			w := watch.NewFakeWithChanSize(1, false)
			w.Add(r.obj(strconv.Itoa(n)))
			relist <- w
			return w, nil
		}
		inf, err := k.newInformer(api.listerWatcher(), r.example, fmt.Sprintf("%T", r.example), "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { inf.RunWithContext(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		relists = append(relists, relist)
		firsts = append(firsts, first)
	}
	eventually(t, "both synced and holding", func() bool { return len(sink.log()) == 2 })
	for _, w := range firsts {
		w.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonExpired})
	}
	var running *watch.FakeWatcher
	waiting := -1
	select {
	case running = <-relists[0]:
		waiting = 1
	case running = <-relists[1]:
		waiting = 0
	case <-time.After(5 * time.Second):
		t.Fatal("no relist began")
	}
	select {
	case <-relists[waiting]:
		t.Fatal("both relists run at once")
	case <-time.After(200 * time.Millisecond):
	}
	running.Stop() // broken off: the relist ends, and the other may begin
	select {
	case <-relists[waiting]:
	case <-time.After(5 * time.Second):
		t.Fatal("the second relist did not begin once the first ended")
	}
}
