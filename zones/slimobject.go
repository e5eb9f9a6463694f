package zones

import (
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// slimObject is what the informers store: the slim form DNS uses, built as
// the object arrives, and the three pieces of metadata client-go reads from
// what its caches hold: namespace and name (the cache key), and resource
// version (an update with the version the cache holds is a resync; the
// store tracks the last one it saw). The zone keeps the same slim object,
// so a large cluster is held once, not as API objects in the cache and
// again in the zone.
//
// It is not a metav1.ObjectMeta: one of those is some 250 bytes, nearly
// all empty fields, in each of the hundreds of thousands of objects a
// large cluster has. The rest of metav1.Object reads as empty, and the
// setters do nothing: nothing sets the metadata of an informer's cached
// objects.
type slimObject struct {
	rv   string
	obj  Object // nil when there is nothing to publish
	kind Kind
	// names are the namespace and name as the API server spells them,
	// kept only when obj does not spell them so: the API server's names
	// are lower case, as the zone's keys, so nearly every object reads
	// them from obj, and is 48 bytes, not 80.
	names *[2]string
}

func newSlimObject(kind Kind, namespace, name, rv string, obj Object) *slimObject {
	s := &slimObject{rv: rv, obj: obj, kind: kind}
	if obj == nil || obj.Key() != (Key{kind, namespace, name}) {
		s.names = &[2]string{namespace, name}
	}
	return s
}

// key is the zone's key of the object: names are lower case there.
func (s *slimObject) key() Key {
	if s.names == nil {
		return s.obj.Key()
	}
	return Key{s.kind, strings.ToLower(s.names[0]), strings.ToLower(s.names[1])}
}

func (s *slimObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

// DeepCopyObject copies the metadata and shares the slim object, which is
// never modified.
func (s *slimObject) DeepCopyObject() runtime.Object {
	c := *s
	return &c
}

func (s *slimObject) GetNamespace() string {
	if s.names != nil {
		return s.names[0]
	}
	return s.obj.Key().Namespace
}

func (s *slimObject) GetName() string {
	if s.names != nil {
		return s.names[1]
	}
	return s.obj.Key().Name
}

func (s *slimObject) GetResourceVersion() string { return s.rv }
func (s *slimObject) SetNamespace(string)        {}
func (s *slimObject) SetName(string)             {}
func (s *slimObject) SetResourceVersion(string)  {}
func (s *slimObject) GetGenerateName() string    { return "" }
func (s *slimObject) SetGenerateName(string)     {}
func (s *slimObject) GetUID() types.UID          { return "" }
func (s *slimObject) SetUID(types.UID)           {}
func (s *slimObject) GetGeneration() int64       { return 0 }
func (s *slimObject) SetGeneration(int64)        {}
func (s *slimObject) GetSelfLink() string        { return "" }
func (s *slimObject) SetSelfLink(string)         {}
func (s *slimObject) GetCreationTimestamp() metav1.Time {
	return metav1.Time{}
}
func (s *slimObject) SetCreationTimestamp(metav1.Time)            {}
func (s *slimObject) GetDeletionTimestamp() *metav1.Time          { return nil }
func (s *slimObject) SetDeletionTimestamp(*metav1.Time)           {}
func (s *slimObject) GetDeletionGracePeriodSeconds() *int64       { return nil }
func (s *slimObject) SetDeletionGracePeriodSeconds(*int64)        {}
func (s *slimObject) GetLabels() map[string]string                { return nil }
func (s *slimObject) SetLabels(map[string]string)                 {}
func (s *slimObject) GetAnnotations() map[string]string           { return nil }
func (s *slimObject) SetAnnotations(map[string]string)            {}
func (s *slimObject) GetFinalizers() []string                     { return nil }
func (s *slimObject) SetFinalizers([]string)                      {}
func (s *slimObject) GetOwnerReferences() []metav1.OwnerReference { return nil }
func (s *slimObject) SetOwnerReferences([]metav1.OwnerReference)  {}
func (s *slimObject) GetManagedFields() []metav1.ManagedFieldsEntry {
	return nil
}
func (s *slimObject) SetManagedFields([]metav1.ManagedFieldsEntry) {}

var _ metav1.Object = (*slimObject)(nil)
