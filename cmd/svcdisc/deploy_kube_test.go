package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
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

// TestDeployManifestsAreAccepted sends every manifest the top kustomization
// (deploy/) reaches, through deploy/dns and deploy/webhook, to the real API
// server as a server-side dry-run create with strict field validation, so a
// schema mistake (a misspelt field, a wrong apiVersion) fails the suite.
// The namespace each kustomization sets is applied here as kustomize would.
// A Corefile in a ConfigMap must parse.
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
	files := kustomizationFiles(t, "../../deploy", "")
	for _, want := range []string{"dns/deployment.yaml", "webhook/base/mutatingwebhookconfiguration.yaml"} {
		if !slices.ContainsFunc(files, func(f kustFile) bool { return strings.HasSuffix(f.path, want) }) {
			t.Errorf("deploy/kustomization.yaml does not reach %s", want)
		}
	}
	for _, f := range files {
		t.Run(strings.TrimPrefix(f.path, "../../deploy/"), func(t *testing.T) {
			dryRunFile(t, env, dyn, mapper, f)
		})
	}
}

// kustFile is a manifest a kustomization reaches, and the namespace
// kustomize gives its namespaced objects.
type kustFile struct{ path, namespace string }

// kustomizationFiles lists the files dir's kustomization reaches, following
// resources that are directories as kustomize does. An outer namespace
// overrides an inner one, as kustomize's namespace transformer does.
func kustomizationFiles(t *testing.T, dir, outerNS string) []kustFile {
	var kust struct {
		Namespace string   `json:"namespace"`
		Resources []string `json:"resources"`
	}
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &kust); err != nil || len(kust.Resources) == 0 {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	ns := cmp.Or(outerNS, kust.Namespace)
	var files []kustFile
	for _, r := range kust.Resources {
		p := filepath.Join(dir, r)
		if st, err := os.Stat(p); err != nil {
			t.Fatal(err)
		} else if st.IsDir() {
			files = append(files, kustomizationFiles(t, p, ns)...)
			continue
		}
		files = append(files, kustFile{p, ns})
	}
	return files
}

func dryRunFile(t *testing.T, env *kubeEnv, dyn dynamic.Interface, mapper meta.RESTMapper, f kustFile) {
	if f.namespace == "" {
		t.Fatalf("%s: no namespace set for it", f.path)
	}
	ctx := context.Background()
	// Namespaced objects can be dry-run created only in a namespace that
	// exists; create it for real (namespace.yaml makes it, where there is
	// one; kube-system exists).
	if _, err := env.client.CoreV1().Namespaces().Get(ctx, f.namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		ns := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": f.namespace}}}
		if _, err := dyn.Resource(nsGVR).Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	seen := 0
	file := f.path
	{
		data, err := os.ReadFile(file)
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
				obj.SetNamespace(f.namespace)
				ri = dyn.Resource(m.Resource).Namespace(f.namespace)
			}
			_, err = ri.Create(ctx, &obj, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				t.Errorf("%s: %s %s: %v", file, gvk.Kind, obj.GetName(), err)
			}
		}
	}
	if seen == 0 {
		t.Errorf("%s: no objects", file)
	}
}

var nsGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
