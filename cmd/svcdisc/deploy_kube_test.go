package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/svcdisc/svcdisc/config"
)

// TestDeployManifestsAreAccepted sends every manifest of deploy/webhook/base
// and deploy/dns to the real API server as a server-side dry-run create
// with strict field validation, so a schema mistake (a misspelt field, a
// wrong apiVersion) fails the suite. The namespace each kustomization sets
// is applied here as kustomize would. A Corefile in a ConfigMap must parse.
func TestDeployManifestsAreAccepted(t *testing.T) {
	env := needKube(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", env.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(env.client.Discovery()))
	for _, base := range []string{"../../deploy/webhook/base", "../../deploy/dns"} {
		t.Run(filepath.Base(filepath.Dir(base))+"/"+filepath.Base(base), func(t *testing.T) {
			dryRunKustomization(t, env, dyn, mapper, base)
		})
	}
}

func dryRunKustomization(t *testing.T, env *kubeEnv, dyn dynamic.Interface, mapper meta.RESTMapper, base string) {
	var kust struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(base, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &kust); err != nil || len(kust.Resources) == 0 {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	ctx := context.Background()
	// Namespaced objects can be dry-run created only in a namespace that
	// exists; create it for real (namespace.yaml makes it, where there is
	// one; kube-system exists).
	if _, err := env.client.CoreV1().Namespaces().Get(ctx, kust.Namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": kust.Namespace}}}
		if _, err := dyn.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	seen := 0
	for _, file := range kust.Resources {
		data, err := os.ReadFile(filepath.Join(base, file))
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(obj.Object) == 0 {
				continue
			}
			seen++
			gvk := obj.GroupVersionKind()
			if gvk.Kind == "ConfigMap" {
				if corefile, ok, _ := unstructured.NestedString(obj.Object, "data", "Corefile"); ok {
					if _, err := config.Parse(file, strings.NewReader(corefile)); err != nil {
						t.Errorf("%s: the Corefile does not parse: %v", file, err)
					}
				}
			}
			m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if err != nil {
				t.Fatalf("%s: %s: %v", file, gvk, err)
			}
			var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				obj.SetNamespace(kust.Namespace)
				ri = dyn.Resource(m.Resource).Namespace(kust.Namespace)
			}
			_, err = ri.Create(ctx, &obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Errorf("%s: %s %s: %v", file, gvk.Kind, obj.GetName(), err)
			}
		}
	}
	if seen < len(kust.Resources) {
		t.Errorf("%d objects in %d files", seen, len(kust.Resources))
	}
}

var nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
