package testredis

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
)

// TestThrowawayRedis proves the suite talks to the redis-server that make test started: the server
// reports the port we were given, and a key round-trips.
func TestThrowawayRedis(t *testing.T) {
	c := Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, wantPort, err := net.SplitHostPort(Addr(t))
	if err != nil {
		t.Fatalf("%s: %v", EnvVar, err)
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, "tcp_port:"+wantPort+"\r\n") {
		t.Fatalf("redis INFO does not report port %s:\n%s", wantPort, info)
	}
	key := "sidpin:test:" + t.Name()
	if err := c.Set(ctx, key, "pinned", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, key).Result(); err != nil || got != "pinned" {
		t.Fatalf("GET %s = %q, %v", key, got, err)
	}
	t.Logf("talked to the throwaway redis-server on port %s", wantPort)
}
