package chatnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sidpin/sidpin/internal/testlog"
	"github.com/sidpin/sidpin/internal/testredis"
)

// TestChatWhileRedisIsDown: a node whose Redis is down starts, is healthy, and serves chat among its
// own clients; once Redis comes up, messages cross between nodes without a restart. Before the fix
// NewNode refused to start ("connection refused").
func TestChatWhileRedisIsDown(t *testing.T) {
	port := testredis.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	logA, logB := &testlog.Buffer{}, &testlog.Buffer{}
	a := startNode(t, redisNodeConfig("node-a", addr, t.Name(), logA))
	b := startNode(t, redisNodeConfig("node-b", addr, t.Name(), logB))

	// A node without fan-out still serves its own clients: it stays in its balancer's rotation.
	if r := get(t, a.base+"/healthz"); r.status != 200 || !strings.HasPrefix(r.body, "ok node-a") {
		t.Fatalf("/healthz while redis is down: %d %q", r.status, r.body)
	}
	alice, carol, bob := joinChat(t, a), joinChat(t, a), joinChat(t, b)
	aliceIn, carolIn, bobIn := inbox(alice), inbox(carol), inbox(bob)
	sendText(t, alice.ws, `421["sendMessage","local only"]`)
	if !waitMessage(carolIn, isText("local only"), 3*time.Second) {
		t.Fatal("chat among one node's clients does not work while redis is down")
	}
	if !waitFrame(aliceIn, `431[{"node":"node-a"}]`, 3*time.Second) {
		t.Fatal("no ack for sendMessage while redis is down")
	}

	testredis.StartOn(t, port)
	crossWithin(t, alice, bobIn, 15*time.Second)
	crossWithin(t, bob, aliceIn, 15*time.Second)
	for name, logs := range map[string]*testlog.Buffer{"node-a": logA, "node-b": logB} {
		// At most one line per 5 s of outage, then one when the fan-out connects.
		if n := strings.Count(logs.String(), "redis unreachable"); n < 1 || n > 2 {
			t.Errorf("%s logged %d redis failures:\n%s", name, n, logs)
		}
		if n := strings.Count(logs.String(), "subscribed to redis again"); n != 1 {
			t.Errorf("%s logged %d reconnections:\n%s", name, n, logs)
		}
	}
}

// TestChatSurvivesRedisRestart: Redis dying does not stop a node's own chat, and the fan-out comes back
// when Redis does.
func TestChatSurvivesRedisRestart(t *testing.T) {
	port := testredis.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	redisServer := testredis.StartOn(t, port)
	a := startNode(t, redisNodeConfig("node-a", addr, t.Name(), nil))
	b := startNode(t, redisNodeConfig("node-b", addr, t.Name(), nil))
	alice, bob := joinChat(t, a), joinChat(t, b)
	aliceIn, bobIn := inbox(alice), inbox(bob)
	crossWithin(t, alice, bobIn, 5*time.Second)

	redisServer.Stop()
	carol := joinChat(t, a)
	carolIn := inbox(carol)
	sendText(t, alice.ws, `429["sendMessage","redis is gone"]`)
	if !waitMessage(carolIn, isText("redis is gone"), 3*time.Second) {
		t.Fatal("chat among one node's clients stopped with redis")
	}
	if !waitFrame(aliceIn, `439[{"node":"node-a"}]`, 3*time.Second) {
		t.Fatal("no ack for sendMessage after redis died")
	}
	if r := get(t, a.base+"/healthz"); r.status != 200 {
		t.Fatalf("/healthz after redis died: %d %q", r.status, r.body)
	}

	testredis.StartOn(t, port)
	crossWithin(t, alice, bobIn, 15*time.Second)
	crossWithin(t, bob, aliceIn, 15*time.Second)
}

func TestFanoutCloseWhileRedisIsDown(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testredis.FreePort(t)), DialerRetries: 1})
	defer client.Close()
	f := StartRedisFanout(context.Background(), client, "ch", NewChat("n"), slog.New(slog.DiscardHandler))
	if f.subscribed.Load() {
		t.Fatal("subscribed to nothing")
	}
	if err := f.Publish(Broadcast{Packet: []byte("2[]")}); err == nil {
		t.Fatal("publish to nothing succeeded")
	}
	done := make(chan struct{})
	go func() { _ = f.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the retry loop")
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * time.Millisecond, max: 5 * time.Second}
	caps := []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000}
	for round := 0; round < 2; round++ {
		for i, c := range caps {
			c *= time.Millisecond
			if d := b.next(); d < c/2 || d > c {
				t.Fatalf("round %d, delay %d = %s, want within [%s, %s]", round, i, d, c/2, c)
			}
		}
		b.reset()
	}
}

func TestFailureLog(t *testing.T) {
	type step struct {
		at      time.Duration // since the start
		recover bool
		lines   int // log lines written so far
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"first failure at once", []step{{0, false, 1}}},
		{"then at most one per interval", []step{{0, false, 1}, {time.Second, false, 1}, {4 * time.Second, false, 1}, {5 * time.Second, false, 2}, {6 * time.Second, false, 2}}},
		{"a new run logs at once", []step{{0, false, 1}, {time.Second, true, 1}, {2 * time.Second, false, 2}}},
		{"recovery alone logs nothing", []step{{0, true, 0}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out testlog.Buffer
			l := newFailureLog(slog.New(slog.NewTextHandler(&out, nil)), "it failed", 5*time.Second)
			start := time.Now()
			for i, s := range c.steps {
				if s.recover {
					l.recovered(start.Add(s.at))
				} else {
					l.failed(errors.New("boom"), start.Add(s.at))
				}
				if got := strings.Count(out.String(), "it failed"); got != s.lines {
					t.Fatalf("after step %d: %d lines, want %d:\n%s", i, got, s.lines, &out)
				}
			}
		})
	}
	var out testlog.Buffer
	l := newFailureLog(slog.New(slog.NewTextHandler(&out, nil)), "it failed", 5*time.Second)
	start := time.Now()
	l.failed(errors.New("boom"), start)
	l.failed(errors.New("boom"), start.Add(time.Second))
	l.failed(errors.New("boom"), start.Add(6*time.Second))
	if !strings.Contains(out.String(), "unlogged_failures=1") || !strings.Contains(out.String(), "failing_for=6s") {
		t.Fatalf("the second line must count the skipped failure and the outage:\n%s", &out)
	}
	if d, ok := l.recovered(start.Add(7 * time.Second)); !ok || d != 7*time.Second {
		t.Fatalf("recovered = %s %v", d, ok)
	}
}

func redisNodeConfig(name, addr, channel string, logs *testlog.Buffer) NodeConfig {
	cfg := NodeConfig{Name: name, RedisAddr: addr, RedisChannel: channel}
	if logs != nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	}
	return cfg
}

// crossWithin sends messages from one node's client until one reaches to, another node's client.
func crossWithin(t *testing.T, from *chatClient, to <-chan string, within time.Duration) {
	t.Helper()
	tag := "across " + from.id + " "
	deadline := time.Now().Add(within)
	for i := 0; time.Now().Before(deadline); i++ {
		text, _ := json.Marshal(tag + strconv.Itoa(i))
		sendText(t, from.ws, `42["sendMessage",`+string(text)+`]`)
		if waitMessage(to, func(msg string) bool { return strings.HasPrefix(msg, tag) }, 250*time.Millisecond) {
			return
		}
	}
	t.Fatalf("no message from %s (%s) crossed to the other node within %s", from.id, from.node, within)
}

// inbox reads a client's frames in the background. Waiting on it with a timeout leaves the
// connection usable, where a timed-out read would break it.
func inbox(c *chatClient) <-chan string {
	frames := make(chan string, 1024)
	go func() {
		defer close(frames)
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				return
			}
			frames <- string(data)
		}
	}()
	return frames
}

// waitFrame waits up to d for the frame want, skipping others.
func waitFrame(frames <-chan string, want string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return false
			}
			if f == want {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// waitMessage waits up to d for a "message" event whose msg is a string that match accepts.
func waitMessage(frames <-chan string, match func(string) bool, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case f, ok := <-frames:
			if !ok {
				return false
			}
			if msg, isMessage := messageText(f); isMessage && match(msg) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

func isText(want string) func(string) bool { return func(msg string) bool { return msg == want } }

// messageText reads 42["message",{...,"msg":"text",...}].
func messageText(frame string) (string, bool) {
	var args []json.RawMessage
	if !strings.HasPrefix(frame, "42") || json.Unmarshal([]byte(frame[2:]), &args) != nil || len(args) < 2 || string(args[0]) != `"message"` {
		return "", false
	}
	var m chatMessage
	var text string
	if json.Unmarshal(args[1], &m) != nil || json.Unmarshal(m.Msg, &text) != nil {
		return "", false
	}
	return text, true
}
