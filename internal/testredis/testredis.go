// Package testredis gives tests the throwaway redis-server that `make test` starts.
//
// `make test` (scripts/test.sh) starts redis-server on a free loopback port and exports its address as
// SIDPIN_TEST_REDIS. A test that needs Redis and finds none fails with a message saying how to run it;
// it never skips silently.
package testredis

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// EnvVar names the variable that holds the test Redis address (host:port).
const EnvVar = "SIDPIN_TEST_REDIS"

// Addr returns the test Redis address or fails the test.
func Addr(tb testing.TB) string {
	tb.Helper()
	addr := os.Getenv(EnvVar)
	if addr == "" {
		tb.Fatalf("%s is not set: this test needs a throwaway redis-server; run it through `make test`, "+
			"or start redis-server on a free port and set %s=127.0.0.1:PORT", EnvVar, EnvVar)
	}
	return addr
}

// Client returns a client of the test Redis, closed when the test ends. It fails the test if Redis
// does not answer PING.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: Addr(tb), MaxRetries: -1, DialTimeout: 2 * time.Second})
	tb.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		tb.Fatalf("test redis at %s does not answer: %v", c.Options().Addr, err)
	}
	return c
}
