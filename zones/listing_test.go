package zones

import (
	"context"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// listingCounter counts the listings begun and ended.
type listingCounter struct{ begun, ended atomic.Int32 }

func (c *listingCounter) begin() func() {
	c.begun.Add(1)
	return func() { c.ended.Add(1) }
}

func (c *listingCounter) check(t *testing.T, when string, begun, ended int32) {
	t.Helper()
	if b, e := c.begun.Load(), c.ended.Load(); b != begun || e != ended {
		t.Errorf("%s: %d listings begun, %d ended; want %d, %d", when, b, e, begun, ended)
	}
}

func TestListingsAreTheListsAndTheInitialEventsOfWatchLists(t *testing.T) {
	var fw *watch.FakeWatcher
	lw := &cache.ListWatch{
		ListWithContextFunc: func(context.Context, metav1.ListOptions) (runtime.Object, error) {
			return &corev1.ServiceList{}, nil
		},
		WatchFuncWithContext: func(context.Context, metav1.ListOptions) (watch.Interface, error) {
			fw = watch.NewFake()
			return fw, nil
		},
	}
	var c listingCounter
	l := newListingWatcher(lw, c.begin)
	ctx := context.Background()

	if _, err := l.ListWithContext(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	c.check(t, "after a list", 1, 1)

	w, err := l.WatchWithContext(ctx, metav1.ListOptions{ResourceVersion: "5"})
	if err != nil {
		t.Fatal(err)
	}
	w.Stop()
	c.check(t, "a plain watch", 1, 1)

	yes := true
	w, err = l.WatchWithContext(ctx, metav1.ListOptions{SendInitialEvents: &yes})
	if err != nil {
		t.Fatal(err)
	}
	c.check(t, "watch-list started, nothing received", 1, 1)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "ns", ResourceVersion: "7"}}
	go fw.Add(svc)
	if ev := <-w.ResultChan(); ev.Type != watch.Added || ev.Object != svc {
		t.Fatalf("event %v %v, want the Service added", ev.Type, ev.Object)
	}
	c.check(t, "during the initial events", 2, 1)
	end := &corev1.Service{ObjectMeta: metav1.ObjectMeta{ResourceVersion: "7",
		Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}}}
	go fw.Action(watch.Bookmark, end)
	if ev := <-w.ResultChan(); ev.Type != watch.Bookmark {
		t.Fatalf("event %v, want the bookmark", ev.Type)
	}
	go fw.Modify(svc) // the watch goes on after its initial events
	if ev := <-w.ResultChan(); ev.Type != watch.Modified {
		t.Fatalf("event %v, want the modification", ev.Type)
	}
	c.check(t, "after the bookmark", 2, 2) // ended when the bookmark was handed on
	w.Stop()
	if _, open := <-w.ResultChan(); open {
		t.Error("the result channel is open after Stop")
	}
	c.check(t, "after stop", 2, 2)

	// A watch-list that breaks before its bookmark ends its listing too;
	// one that breaks before any event was none.
	w, err = l.WatchWithContext(ctx, metav1.ListOptions{SendInitialEvents: &yes})
	if err != nil {
		t.Fatal(err)
	}
	go fw.Add(svc)
	<-w.ResultChan()
	fw.Stop()
	for range w.ResultChan() {
	}
	c.check(t, "a watch-list broken midway", 3, 3)
	w, err = l.WatchWithContext(ctx, metav1.ListOptions{SendInitialEvents: &yes})
	if err != nil {
		t.Fatal(err)
	}
	fw.Stop()
	for range w.ResultChan() {
	}
	c.check(t, "a watch-list broken at once", 3, 3)
	if l.IsWatchListSemanticsUnSupported() {
		t.Error("the wrapper hides that the client speaks watch-list")
	}
}
