package proxy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/sidpin/sidpin/admin"
	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
)

// TestGrafanaDashboardMetricsExist: deploy/grafana/sidpin.json parses as a dashboard, and every
// metric name in its queries is in the /metrics output of a real sidpin (admin listener) that served
// polling, a WebSocket upgrade and an unknown sid.
func TestGrafanaDashboardMetricsExist(t *testing.T) {
	raw, err := os.ReadFile("../deploy/grafana/sidpin.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil || dash.Title == "" || len(dash.Panels) < 10 {
		t.Fatalf("the dashboard does not parse as one: %v (%d panels)", err, len(dash.Panels))
	}

	node := startChatNode(t, chatnode.NodeConfig{Name: "node1"})
	cfg, err := configs.QuickStart("127.0.0.1:0", []string{node}, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	store, _ := affinity.NewMemoryStore(affinity.MemoryOptions{})
	p, addr := serveProxyLogged(t, cfg, store, quiet)
	base := "http://" + addr
	ws, _, probed := openProbe(t, base)
	if probed != "3probe" {
		t.Fatalf("probe answer %q", probed)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	get(t, base+"/socket.io/?EIO=4&transport=polling&sid=nosuchsession")
	time.Sleep(100 * time.Millisecond)

	adm := admin.New(p, store, "", quiet)
	ln := listen(t)
	go adm.Serve(ln)
	resp, err := http.Get("http://" + ln.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposed := string(body)

	name := regexp.MustCompile(`sidpin_[a-z0-9_]+`)
	checked := 0
	for _, panel := range dash.Panels {
		if len(panel.Targets) == 0 {
			t.Fatalf("panel %q has no query", panel.Title)
		}
		for _, target := range panel.Targets {
			for _, m := range name.FindAllString(target.Expr, -1) {
				family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				if !strings.Contains(exposed, "\n"+m) && !strings.Contains(exposed, "# TYPE "+family+" ") {
					t.Errorf("panel %q queries %s, which /metrics does not expose", panel.Title, m)
				}
				checked++
			}
		}
	}
	if checked < 14 {
		t.Fatalf("only %d metric names found in the dashboard's queries", checked)
	}
}
