package configs

import (
	"reflect"
	"slices"
	"testing"
	"time"
)

// TestEveryFieldIsClassedForReload fails when a config field is added without saying whether a
// reload applies it: a field read at start only would otherwise change silently on no reload.
func TestEveryFieldIsClassedForReload(t *testing.T) {
	c := Default()
	walkReload(reflect.ValueOf(c), reflect.ValueOf(c), "", func(path, class string, _, _ reflect.Value) {
		if class != ReloadLive && class != ReloadRestart {
			t.Errorf("%s: no reload:\"live\" or reload:\"restart\" tag (got %q)", path, class)
		}
	})
}

func TestRestartFieldsChanged(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"nothing", func(*Config) {}, nil},
		{"listen", func(c *Config) { c.Listen = "127.0.0.1:1" }, []string{"listen"}},
		{"a redis timeout", func(c *Config) { c.Store.Redis.ReadTimeout = Duration(time.Second) }, []string{"store"}},
		{"the redis password variable", func(c *Config) { c.Store.Redis.PasswordEnv = "X" }, []string{"store"}},
		{"a per-client limit", func(c *Config) { c.Limits.PerClient.HandshakeRate = 1 }, []string{"limits"}},
		{"client_read", func(c *Config) { c.Timeouts.ClientRead = Duration(time.Second) }, []string{"timeouts.client_read"}},
		{"live timeouts", func(c *Config) {
			c.Timeouts.UpstreamResponse = Duration(time.Minute)
			c.Timeouts.PinSlack = Duration(time.Second)
			c.Timeouts.Handshake = Duration(time.Second)
		}, nil},
		{"pools", func(c *Config) { c.Pools = []Pool{{Name: "x"}} }, nil},
		{"log and admin", func(c *Config) { c.Log.Level = "debug"; c.Admin.Listen = "127.0.0.1:2" }, []string{"admin", "log"}},
	}
	for _, c := range cases {
		old, cfg := Default(), Default()
		c.change(&cfg)
		if got := RestartFieldsChanged(&old, &cfg); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestKeepRestartFields(t *testing.T) {
	old, cfg := Default(), Default()
	cfg.Listen, cfg.Store.Redis.PoolSize, cfg.Timeouts.ClientIdle = "127.0.0.1:1", 7, Duration(time.Second)
	cfg.Timeouts.UpstreamResponse = Duration(time.Minute)
	KeepRestartFields(&old, &cfg)
	if cfg.Listen != old.Listen || cfg.Store.Redis.PoolSize != old.Store.Redis.PoolSize || cfg.Timeouts.ClientIdle != old.Timeouts.ClientIdle {
		t.Fatalf("restart fields not kept: %+v", cfg)
	}
	if cfg.Timeouts.UpstreamResponse != Duration(time.Minute) {
		t.Fatal("a live field was reset")
	}
}
