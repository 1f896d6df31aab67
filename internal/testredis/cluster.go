package testredis

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster starts a throwaway three-master Redis Cluster on free loopback ports for the test and
// returns a client of it; the servers are stopped (by their own process handles) when the test
// ends. It needs redis-server and redis-cli, which make test installs.
func Cluster(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s is needed for the Redis Cluster test (Debian: apt-get install redis-server): %v", bin, err)
		}
	}
	dir := tb.TempDir()
	var addrs []string
	for i := 0; i < 3; i++ {
		port := FreePort(tb)
		nodeDir := filepath.Join(dir, fmt.Sprint(i))
		if err := os.MkdirAll(nodeDir, 0o700); err != nil {
			tb.Fatal(err)
		}
		cmd := exec.Command("redis-server", "--port", fmt.Sprint(port), "--bind", "127.0.0.1",
			"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(nodeDir, "nodes.conf"),
			"--save", "", "--appendonly", "no", "--dir", nodeDir, "--logfile", filepath.Join(nodeDir, "log"))
		if err := cmd.Start(); err != nil {
			tb.Fatalf("start redis-server: %v", err)
		}
		tb.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		WaitForPing(tb, addr)
		addrs = append(addrs, addr)
	}
	create := exec.Command("redis-cli", append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "0", "--cluster-yes")...)
	if out, err := create.CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: 2, ContextTimeoutEnabled: true})
	tb.Cleanup(func() { c.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := c.ClusterInfo(context.Background()).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the test cluster never reported cluster_state:ok: %v %s", err, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return c
}
