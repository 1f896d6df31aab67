package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fasthttp/websocket"
	"github.com/redis/go-redis/v9"
	"github.com/valyala/fasthttp"

	"github.com/sidpin/sidpin/affinity"
	"github.com/sidpin/sidpin/chatnode"
	"github.com/sidpin/sidpin/configs"
	"github.com/sidpin/sidpin/internal/testredis"
	"github.com/sidpin/sidpin/proxy"
)

// migrant is a chat client that sends acknowledged messages one after the other and, whenever its
// session ends, opens another and sends again what was not acknowledged, as socket.io-client does.
type migrant struct {
	base  string
	ws    bool
	load  *migrationLoad
	acked int
}

// migrationLoad is the clients of a migration test and what they saw.
type migrationLoad struct {
	stop     chan struct{}
	halt     sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	reopened []time.Time // when a client opened a new session after its first, and on which node
	reNodes  []string
	failures atomic.Int64
	lastErr  atomic.Value
	sent     atomic.Int64 // messages, counted once each however often they were sent again
	acked    atomic.Int64
	first    map[string]int // first sessions per node
}

func (l *migrationLoad) fail(err error) {
	l.failures.Add(1)
	l.lastErr.Store(err.Error())
}

// run chats until stopped: a message every interval.
func (c *migrant) run(interval time.Duration, opened chan<- struct{}) {
	defer c.load.wg.Done()
	first := true
	pending := ""
	for {
		if pending == "" { // a message not acknowledged yet is sent again, stopping or not
			select {
			case <-c.load.stop:
				return
			default:
			}
		}
		s, node, err := c.open()
		if err != nil {
			c.load.fail(err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		c.load.mu.Lock()
		if first {
			c.load.first[node]++
		} else {
			c.load.reopened = append(c.load.reopened, time.Now())
			c.load.reNodes = append(c.load.reNodes, node)
		}
		c.load.mu.Unlock()
		if first {
			first = false
			opened <- struct{}{}
		}
		pending = c.chat(s, interval, pending)
		s.close()
	}
}

// chat sends messages on s until its session ends (then it returns the message not acknowledged, to
// send again) or the load stops.
func (c *migrant) chat(s chatSession, interval time.Duration, pending string) string {
	for n := 1; ; n++ {
		if pending == "" {
			select {
			case <-c.load.stop:
				return ""
			case <-time.After(interval):
			}
			c.acked++
			pending = fmt.Sprintf("m%d", c.acked)
			c.load.sent.Add(1)
		}
		if err := s.send(fmt.Sprintf(`42%d["echo","%s"]`, n, pending)); err != nil {
			return pending
		}
		if err := s.await(fmt.Sprintf(`43%d["%s"]`, n, pending)); err != nil {
			if !errors.Is(err, errSessionEnded) {
				c.load.fail(err)
			}
			return pending
		}
		c.load.acked.Add(1)
		pending = ""
	}
}

var errSessionEnded = errors.New("session ended")

// chatSession is one Engine.IO session of a migrant, over polling or WebSocket.
type chatSession interface {
	send(packet string) error
	await(packet string) error // errSessionEnded when the session ended first
	close()
}

func (c *migrant) open() (chatSession, string, error) {
	var s chatSession
	if c.ws {
		conn, _, err := websocket.DefaultDialer.Dial(wsURL(c.base)+"/socket.io/?EIO=4&transport=websocket", nil)
		if err != nil {
			return nil, "", err
		}
		s = &wsSession{conn: conn}
	} else {
		l := &chatLoad{base: c.base, client: migrantClient}
		status, body, err := l.do("GET", c.base+"/socket.io/?EIO=4&transport=polling", "")
		i := strings.Index(body, `"sid":"`)
		if err != nil || status != 200 || i < 0 {
			return nil, "", fmt.Errorf("handshake: %d %q %v", status, body, err)
		}
		sid := body[i+7:]
		s = &pollSession{l: l, url: c.base + "/socket.io/?EIO=4&transport=polling&sid=" + sid[:strings.IndexByte(sid, '"')]}
	}
	if err := s.send("40"); err != nil {
		s.close()
		return nil, "", err
	}
	got, err := awaitText(s, `"welcome"`)
	if err != nil {
		s.close()
		return nil, "", fmt.Errorf("welcome: %w", err)
	}
	node := got[strings.Index(got, `{"node":"`)+9:]
	return s, node[:strings.IndexByte(node, '"')], nil
}

// migrantClient carries every polling migrant's requests: one connection each at most.
var migrantClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}

// awaitText waits for a packet containing want and returns it.
func awaitText(s chatSession, want string) (string, error) {
	var got string
	err := s.await("\x00" + want) // "\x00": contains, not equals
	if ps, ok := s.(*pollSession); ok {
		got = ps.last
	}
	if ws, ok := s.(*wsSession); ok {
		got = ws.last
	}
	return got, err
}

func matches(packet, want string) bool {
	if rest, ok := strings.CutPrefix(want, "\x00"); ok {
		return strings.Contains(packet, rest)
	}
	return packet == want
}

type wsSession struct {
	conn *websocket.Conn
	last string
}

func (s *wsSession) send(packet string) error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return s.conn.WriteMessage(websocket.TextMessage, []byte(packet))
}

func (s *wsSession) await(want string) error {
	_ = s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, data, err := s.conn.ReadMessage()
		var ce *websocket.CloseError
		switch {
		case errors.As(err, &ce) && ce.Code == websocket.CloseGoingAway:
			return errSessionEnded // migrated
		case err != nil:
			return fmt.Errorf("websocket waiting for %q: %w", want, err)
		case string(data) == "2":
			_ = s.send("3")
		case string(data) == "1":
			return errSessionEnded
		case matches(string(data), want):
			s.last = string(data)
			return nil
		}
	}
}

func (s *wsSession) close() { s.conn.Close() }

type pollSession struct {
	l    *chatLoad
	url  string
	last string
}

func (s *pollSession) send(packet string) error {
	status, body, err := s.l.do("POST", s.url, packet)
	switch {
	case err != nil:
		return err
	case status == 400 && strings.Contains(body, `"code":1`):
		return errSessionEnded
	case body != "ok":
		return fmt.Errorf("POST %q: %d %q", packet, status, body)
	}
	return nil
}

func (s *pollSession) await(want string) error {
	for range 20 {
		status, body, err := s.l.do("GET", s.url, "")
		switch {
		case err != nil:
			return err
		case status == 400 && strings.Contains(body, `"code":1`):
			return errSessionEnded // the session is gone: the kick's "Session ID unknown"
		case status != 200:
			return fmt.Errorf("GET waiting for %q: %d %q", want, status, body)
		}
		for _, packet := range strings.Split(body, "\x1e") {
			switch {
			case packet == "1":
				return errSessionEnded // the node closed it: the kick's close packet
			case packet == "2":
				_, _, _ = s.l.do("POST", s.url, "3")
			case matches(packet, want):
				s.last = packet
				return nil
			}
		}
	}
	return fmt.Errorf("no %q in 20 polls", want)
}

func (s *pollSession) close() {}

// startMigrants opens n sessions (half polling, half WebSocket) that chat every interval, and
// returns once each has its first session.
func startMigrants(t *testing.T, base string, n int, interval time.Duration) *migrationLoad {
	t.Helper()
	l := &migrationLoad{stop: make(chan struct{}), first: map[string]int{}}
	opened := make(chan struct{}, n)
	for i := range n {
		c := &migrant{base: base, ws: i%2 == 0, load: l}
		l.wg.Add(1)
		go c.run(interval, opened)
		if i%50 == 49 {
			time.Sleep(20 * time.Millisecond) // not all handshakes at once
		}
	}
	for range n {
		select {
		case <-opened:
		case <-time.After(30 * time.Second):
			t.Fatalf("sessions not all open in 30 s: %d failures, the last %v", l.failures.Load(), l.lastErr.Load())
		}
	}
	t.Cleanup(l.end)
	return l
}

// end stops the clients (once) and waits for them.
func (l *migrationLoad) end() {
	l.halt.Do(func() { close(l.stop) })
	l.wg.Wait()
}

// migrationCase is one way a migration starts.
type migrationCase struct {
	name string
	// start runs the proxy in front of three nodes, with every new session going to the first, and
	// returns a function that starts its migration.
	start func(t *testing.T) (p *proxy.Proxy, base string, first string, migrate func())
}

// TestPacedMigration: 600 chatting sessions on one node, migrated at 100 per second (by the API's
// Migrate, and by on_node_removed: migrate after DNS dropped the node): the other nodes never see
// more than 1.5 × 100 new sessions in a second, the migration takes at least 5 s, every message is
// acknowledged (sent again after a reconnect when the session ended first), and the node ends with
// no session.
func TestPacedMigration(t *testing.T) {
	const sessions, rate = 600, 100
	for _, tc := range []migrationCase{
		{"api", func(t *testing.T) (*proxy.Proxy, string, string, func()) {
			node1, node2, node3 := startChatNodeNamed(t, "node1"), startChatNodeNamed(t, "node2"), startChatNodeNamed(t, "node3")
			p, base, _ := startManagedProxy(t, []string{node1, node2, node3}, calmHealth)
			return p, base, "node1", func() {
				if _, err := p.Migrate(context.Background(), "default", "node1", rate); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"dns", func(t *testing.T) (*proxy.Proxy, string, string, func()) {
			p, base, dns, port := startDiscoveredCluster(t, "127.0.0.11 chat.sidpin.test\n127.0.0.12 chat.sidpin.test\n127.0.0.13 chat.sidpin.test\n",
				func(c *configs.Config) {
					calmHealth(c)
					c.Pools[0].OnNodeRemoved, c.Pools[0].MigrateRate = configs.RemovedMigrate, rate
				})
			return p, base, fmt.Sprintf("127.0.0.11_%d", port), func() {
				dns.Hosts("127.0.0.12 chat.sidpin.test\n127.0.0.13 chat.sidpin.test\n")
				dns.Reload()
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, base, first, migrate := tc.start(t)
			ctx := context.Background()
			others := drainOthers(t, p, first, true) // every first session on the node to migrate
			load := startMigrants(t, base, sessions, time.Second)
			drainOthers(t, p, first, false)
			waitFor(t, "every session counted on the node to migrate", func() bool { // the memory table counts what it applied
				counts, _ := p.Pins().CountByNode(ctx, "default")
				if counts[first] != sessions || len(counts) != 1 {
					t.Logf("counts %v others %v failures %d last %v", counts, others, load.failures.Load(), load.lastErr.Load())
					return false
				}
				return true
			})
			start := time.Now()
			migrate()
			var took time.Duration
			for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				ms, _ := p.Migrations(ctx)
				if len(ms) == 1 && ms[0].Done {
					took = ms[0].Updated.Sub(start)
					break
				}
				if time.Now().After(end) {
					t.Fatalf("migration not done in 30 s: %+v", ms)
				}
			}
			time.Sleep(2 * time.Second) // the last clients reconnect and send again
			load.end()
			if counts, _ := p.Pins().CountByNode(ctx, "default"); counts[first] != 0 {
				t.Fatalf("%d sessions left on the migrated node", counts[first])
			}
			perSecond := map[int]int{}
			for i, at := range load.reopened {
				if load.reNodes[i] == "node1" || strings.HasPrefix(load.reNodes[i], "127.0.0.11") {
					t.Fatalf("a session reopened on the migrated node")
				}
				perSecond[int(at.Sub(start)/time.Second)]++
			}
			peak := 0
			for _, n := range perSecond {
				peak = max(peak, n)
			}
			t.Logf("migrated %d sessions in %v; reopened %d, at most %d in a second (%v); messages %d sent, %d acked; %d client errors (last: %v)",
				sessions, took.Round(10*time.Millisecond), len(load.reopened), peak, perSecond, load.sent.Load(), load.acked.Load(), load.failures.Load(), load.lastErr.Load())
			switch {
			case took < 5*time.Second:
				t.Fatalf("the migration took %v, want at least 5 s for %d sessions at %d/s", took, sessions, rate)
			case len(load.reopened) < sessions:
				t.Fatalf("only %d of %d clients reopened a session", len(load.reopened), sessions)
			case float64(peak) > 1.5*rate:
				t.Fatalf("%d new sessions in one second on the other nodes, over 1.5 × %d", peak, rate)
			case load.acked.Load() != load.sent.Load():
				t.Fatalf("%d messages sent, %d acknowledged", load.sent.Load(), load.acked.Load())
			case load.failures.Load() > 0:
				t.Fatalf("%d client errors, the last: %v", load.failures.Load(), load.lastErr.Load())
			}
		})
	}
}

// calmHealth is loopConfig with health checks that a loaded test machine (600 sessions opening
// under the race detector) does not fail: the managed proxy's 30 ms checks would take a busy node down.
func calmHealth(c *configs.Config) {
	loopConfig(c)
	c.Pools[0].Health.Interval = configs.Duration(500 * time.Millisecond)
	c.Pools[0].Health.Timeout = configs.Duration(400 * time.Millisecond)
	c.Pools[0].Health.Fall = 3
}

// drainOthers drains (or undrains) every node of the proxy but first; it returns their names.
func drainOthers(t *testing.T, p *proxy.Proxy, first string, drain bool) []string {
	t.Helper()
	var names []string
	for _, n := range p.Nodes().Nodes() {
		if n.Name == first {
			continue
		}
		names = append(names, n.Name)
		if err := p.SetDrain(context.Background(), n.Pool, n.Name, drain); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// TestSelfDrainingNodeMigrates: a node whose HTTP health check answers health.draining_status gets no
// new session, and with on_node_removed: migrate its sessions are migrated; when it answers as usual
// again it takes new sessions.
func TestSelfDrainingNodeMigrates(t *testing.T) {
	var leaving atomic.Bool
	n, err := chatnode.NewNode(context.Background(), chatnode.NodeConfig{Name: "node1", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ln := listen(t)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if string(ctx.Path()) == "/healthz" && leaving.Load() {
			ctx.SetStatusCode(299) // the node's way of saying it is leaving
			return
		}
		n.ServeHTTP(ctx)
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(); n.Shutdown(context.Background()) })
	node2 := startChatNodeNamed(t, "node2")
	p, base, store := startManagedProxy(t, []string{"http://" + ln.Addr().String(), node2}, func(c *configs.Config) {
		calmHealth(c)
		c.Pools[0].Health.Interval = configs.Duration(100 * time.Millisecond)
		c.Pools[0].Health.DrainingStatus = 299
		c.Pools[0].OnNodeRemoved, c.Pools[0].MigrateRate = configs.RemovedMigrate, 200
	})
	drainOthers(t, p, "node1", true)
	load := startMigrants(t, base, 20, 200*time.Millisecond)
	drainOthers(t, p, "node1", false)
	leaving.Store(true)
	waitFor(t, "node1 migrated", func() bool {
		ms, _ := p.Migrations(context.Background())
		counts, _ := store.CountByNode(context.Background(), "default")
		return len(ms) == 1 && ms[0].Done && counts["node1"] == 0
	})
	if st := p.Nodes().Node("default", "node1").State(); st != "draining" {
		t.Fatalf("node1 is %s while its check asks to be drained", st)
	}
	leaving.Store(false)
	waitFor(t, "node1 up again", func() bool { return p.Nodes().Node("default", "node1").State() == "up" })
	load.end()
	if load.failures.Load() > 0 || load.acked.Load() != load.sent.Load() {
		t.Fatalf("%d client errors (last %v); %d sent, %d acked", load.failures.Load(), load.lastErr.Load(), load.sent.Load(), load.acked.Load())
	}
}

// startManagedOnRedis runs a managed proxy (health checks, node sync) on the test Redis under
// prefix: instances started with one prefix share their pins, drain marks and migrations.
func startManagedOnRedis(t *testing.T, urls []string, prefix string, tweak func(*configs.Config), opts ...proxy.Option) (*proxy.Proxy, string) {
	t.Helper()
	cfg, err := configs.QuickStart("127.0.0.1:0", urls, "/socket.io/")
	if err != nil {
		t.Fatal(err)
	}
	calmHealth(cfg)
	cfg.Store.Kind = configs.StoreRedis
	if tweak != nil {
		tweak(cfg)
	}
	rdb := redis.NewClient(&redis.Options{Addr: testredis.Addr(t), MaxRetries: -1, ContextTimeoutEnabled: true, PoolSize: 64})
	t.Cleanup(func() { rdb.Close() })
	store := affinity.NewRedisStore(rdb, affinity.RedisOptions{Prefix: prefix, OpTimeout: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	p, addr := serveProxyLogged(t, cfg, store, quiet, opts...)
	p.Start(ctx)
	t.Cleanup(cancel)
	return p, "http://" + addr
}

// TestMigrationAcrossInstances: two sidpin instances share the Redis pin table; sessions are opened
// through B and the migration is started on A: B's WebSockets are closed by the evictions A sends,
// B shows A's progress and its end, and every message is acknowledged.
func TestMigrationAcrossInstances(t *testing.T) {
	urls := []string{startChatNodeNamed(t, "node1"), startChatNodeNamed(t, "node2"), startChatNodeNamed(t, "node3")}
	prefix := fmt.Sprintf("migrate:%d:", time.Now().UnixNano())
	a, _ := startManagedOnRedis(t, urls, prefix, nil)
	b, baseB := startManagedOnRedis(t, urls, prefix, nil)
	ctx := context.Background()
	drainOthers(t, b, "node1", true)
	load := startMigrants(t, baseB, 100, 500*time.Millisecond)
	drainOthers(t, b, "node1", false)
	waitFor(t, "B sees the drain marks lifted", func() bool { return b.Nodes().Node("default", "node2").State() == "up" })
	if _, err := a.Migrate(ctx, "default", "node1", 50); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B sees A's migration under way", func() bool {
		ms, _ := b.Migrations(ctx)
		return len(ms) == 1 && ms[0].Ended > 0 && !ms[0].Done
	})
	if st := b.Nodes().Node("default", "node1").State(); st != "draining" {
		t.Fatalf("node1 is %s on B while A migrates it", st)
	}
	if ins, err := b.Instances(ctx); err != nil || len(ins) != 2 || ins[0].ID == ins[1].ID {
		t.Fatalf("B sees the instances %+v %v, want A and B", ins, err)
	}
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ms, _ := b.Migrations(ctx)
		if len(ms) == 1 && ms[0].Done {
			if ms[0].Ended < 100 {
				t.Fatalf("the migration ended %d sessions, want the 100 opened through B", ms[0].Ended)
			}
			break
		}
		if time.Now().After(end) {
			t.Fatalf("B never saw the migration done: %+v", ms)
		}
	}
	time.Sleep(time.Second)
	load.end()
	if counts, _ := b.Pins().CountByNode(ctx, "default"); counts["node1"] != 0 {
		t.Fatalf("%d sessions left on node1", counts["node1"])
	}
	if load.failures.Load() > 0 || load.acked.Load() != load.sent.Load() || len(load.reopened) < 100 {
		t.Fatalf("%d client errors (last %v); %d sent, %d acked; %d reopened", load.failures.Load(), load.lastErr.Load(),
			load.sent.Load(), load.acked.Load(), len(load.reopened))
	}
}
