package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sidpin/sidpin/configs"
)

// object is one Kubernetes manifest, as much of it as the checks below read.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		ClusterIP string         `yaml:"clusterIP"`
		Selector  yaml.Node      `yaml:"selector"`
		Ports     []servicePort  `yaml:"ports"`
		Template  podTemplate    `yaml:"template"`
		Replicas  int            `yaml:"replicas"`
		Extra     map[string]any `yaml:",inline"`
	} `yaml:"spec"`
}

type servicePort struct {
	Name       string `yaml:"name"`
	Port       int    `yaml:"port"`
	TargetPort string `yaml:"targetPort"`
}

type podTemplate struct {
	Metadata struct {
		Labels map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		TerminationGracePeriodSeconds int         `yaml:"terminationGracePeriodSeconds"`
		Containers                    []container `yaml:"containers"`
	} `yaml:"spec"`
}

type container struct {
	Name  string   `yaml:"name"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	ReadinessProbe *struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	Lifecycle struct {
		PreStop struct {
			Sleep struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
}

func (c container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

// loadManifests reads every document of deploy/kubernetes/*.yaml, by kind/name.
func loadManifests(t *testing.T) map[string]object {
	t.Helper()
	files, _ := filepath.Glob("../../deploy/kubernetes/*.yaml")
	if len(files) < 4 {
		t.Fatalf("manifests: %v", files)
	}
	objs := map[string]object{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(false)
		for {
			var o object
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" || (o.Kind != "Namespace" && o.Metadata.Namespace != "chat") {
				t.Fatalf("%s: a document without apiVersion, kind, name or the chat namespace: %+v", f, o.Metadata)
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

func get(t *testing.T, objs map[string]object, key string) object {
	t.Helper()
	o, ok := objs[key]
	if !ok {
		t.Fatalf("no %s in deploy/kubernetes", key)
	}
	return o
}

// TestKubernetesExample: the manifests parse; the config in the ConfigMap passes `sidpin -check`; and
// the pieces agree: Services select their Deployments' pods and name their ports, the discovered name
// and port are the headless Service's, the readiness probe is sidpin's /readyz on its admin port, and
// the termination grace covers the preStop, shutdown_delay and shutdown_grace.
func TestKubernetesExample(t *testing.T) {
	objs := loadManifests(t)
	cm := get(t, objs, "ConfigMap/sidpin")
	cfgFile := filepath.Join(t.TempDir(), "sidpin.yaml")
	if err := os.WriteFile(cfgFile, []byte(cm.Data["sidpin.yaml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"-check", "-config", cfgFile}, &out, &errOut); code != 0 {
		t.Fatalf("sidpin -check of the ConfigMap's config: exit %d: %s%s", code, out.String(), errOut.String())
	}
	cfg, err := configs.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}

	for _, pair := range [][2]string{{"Service/sidpin", "Deployment/sidpin"}, {"Service/chat-nodes", "Deployment/chat-node"}, {"Service/redis", "Deployment/redis"}} {
		svc, dep := get(t, objs, pair[0]), get(t, objs, pair[1])
		var sel map[string]string
		if err := svc.Spec.Selector.Decode(&sel); err != nil || len(sel) == 0 {
			t.Fatalf("%s: selector %v", pair[0], err)
		}
		for k, v := range sel {
			if dep.Spec.Template.Metadata.Labels[k] != v {
				t.Fatalf("%s selects %s=%s, which %s's pods do not carry", pair[0], k, v, pair[1])
			}
		}
		for _, p := range svc.Spec.Ports {
			if dep.Spec.Template.Spec.Containers[0].port(p.TargetPort) == 0 {
				t.Fatalf("%s targets port %q, which %s's container does not name", pair[0], p.TargetPort, pair[1])
			}
		}
	}

	nodes, chat := get(t, objs, "Service/chat-nodes"), get(t, objs, "Deployment/chat-node")
	pool := cfg.Pools[0]
	if nodes.Spec.ClusterIP != "None" {
		t.Fatal("the chat nodes' Service must be headless (clusterIP: None): one DNS record per pod")
	}
	if want := "chat-nodes.chat.svc.cluster.local"; pool.Discovery.Name != want || pool.Discovery.Port != nodes.Spec.Ports[0].Port {
		t.Fatalf("the pool discovers %s:%d, the headless Service is %s:%d", pool.Discovery.Name, pool.Discovery.Port, want, nodes.Spec.Ports[0].Port)
	}
	if pool.OnNodeRemoved != configs.RemovedMigrate {
		t.Fatalf("on_node_removed %q: a rolling deploy of the nodes should migrate", pool.OnNodeRemoved)
	}
	node := chat.Spec.Template.Spec
	if need := int(6000 / pool.MigrateRate); node.Containers[0].Lifecycle.PreStop.Sleep.Seconds < need ||
		node.TerminationGracePeriodSeconds <= node.Containers[0].Lifecycle.PreStop.Sleep.Seconds {
		t.Fatalf("chat node preStop %d s, grace %d s: the preStop must outlast 6000 sessions at %g/s (%d s) and the grace the preStop",
			node.Containers[0].Lifecycle.PreStop.Sleep.Seconds, node.TerminationGracePeriodSeconds, pool.MigrateRate, need)
	}

	sp := get(t, objs, "Deployment/sidpin").Spec.Template.Spec
	c := sp.Containers[0]
	_, adminPort, _ := net.SplitHostPort(cfg.Admin.Listen)
	_, listenPort, _ := net.SplitHostPort(cfg.Listen)
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		strconv.Itoa(c.port(c.ReadinessProbe.HTTPGet.Port)) != adminPort {
		t.Fatalf("sidpin's readiness probe must be /readyz on the admin port %s", adminPort)
	}
	if strconv.Itoa(c.port("http")) != listenPort {
		t.Fatalf("sidpin's http port %d is not the config's listen port %s", c.port("http"), listenPort)
	}
	need := c.Lifecycle.PreStop.Sleep.Seconds + int((cfg.Timeouts.ShutdownDelay.D() + cfg.Timeouts.ShutdownGrace.D()).Seconds())
	if sp.TerminationGracePeriodSeconds < need {
		t.Fatalf("terminationGracePeriodSeconds %d < preStop + shutdown_delay + shutdown_grace = %d", sp.TerminationGracePeriodSeconds, need)
	}
	if !strings.Contains(strings.Join(c.Args, " "), "-config /etc/sidpin/sidpin.yaml") {
		t.Fatalf("sidpin's args %v do not read the mounted config", c.Args)
	}
}
