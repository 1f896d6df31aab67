package affinity

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Migrations of a MemoryStore (ClusterState): a map, for this instance only.

// SetMigration implements ClusterState.
func (s *MemoryStore) SetMigration(_ context.Context, m Migration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.migrations[m.Ref] = m
	return nil
}

// Migrations implements ClusterState.
func (s *MemoryStore) Migrations(context.Context) ([]Migration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sortedMigrations(slices.Collect(maps.Values(s.migrations))), nil
}

// EndMigration implements ClusterState.
func (s *MemoryStore) EndMigration(_ context.Context, ref NodeRef) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.migrations, ref)
	return nil
}

// Migrations of a RedisStore: one hash, a field per node, its value the migration in JSON.

// SetMigration implements ClusterState.
func (s *RedisStore) SetMigration(ctx context.Context, m Migration) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.migrationsKey(), nodeMember(m.Ref.Pool, m.Ref.Node), b).Err(); err != nil {
		return fmt.Errorf("affinity: redis set migration %s/%s: %w", m.Ref.Pool, m.Ref.Node, err)
	}
	return nil
}

// Migrations implements ClusterState.
func (s *RedisStore) Migrations(ctx context.Context) ([]Migration, error) {
	all, err := s.rdb.HGetAll(ctx, s.migrationsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis migrations: %w", err)
	}
	var out []Migration
	for member, v := range all {
		pool, node, ok := parseNodeMember(member)
		var m Migration
		if !ok || json.Unmarshal([]byte(v), &m) != nil {
			continue // not sidpin's: skipped
		}
		m.Ref = NodeRef{Pool: pool, Node: node}
		out = append(out, m)
	}
	return sortedMigrations(out), nil
}

// EndMigration implements ClusterState.
func (s *RedisStore) EndMigration(ctx context.Context, ref NodeRef) error {
	if err := s.rdb.HDel(ctx, s.migrationsKey(), nodeMember(ref.Pool, ref.Node)).Err(); err != nil {
		return fmt.Errorf("affinity: redis end migration %s/%s: %w", ref.Pool, ref.Node, err)
	}
	return nil
}

func sortedMigrations(ms []Migration) []Migration {
	slices.SortFunc(ms, func(a, b Migration) int {
		if a.Ref.Pool != b.Ref.Pool {
			return strings.Compare(a.Ref.Pool, b.Ref.Pool)
		}
		return strings.Compare(a.Ref.Node, b.Ref.Node)
	})
	return ms
}

// Heartbeats of a MemoryStore: this instance only.

// Heartbeat implements ClusterState.
func (s *MemoryStore) Heartbeat(_ context.Context, in Instance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instances[in.ID] = in
	return nil
}

// Instances implements ClusterState.
func (s *MemoryStore) Instances(_ context.Context, maxAge time.Duration) ([]Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return aliveInstances(slices.Collect(maps.Values(s.instances)), maxAge), nil
}

// Heartbeats of a RedisStore: one hash, a field per instance, its value the instance in JSON. Old
// fields are dropped by the readers (an instance that died leaves one behind).

// Heartbeat implements ClusterState.
func (s *RedisStore) Heartbeat(ctx context.Context, in Instance) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := s.rdb.HSet(ctx, s.instancesKey(), in.ID, b).Err(); err != nil {
		return fmt.Errorf("affinity: redis heartbeat: %w", err)
	}
	return nil
}

// Instances implements ClusterState.
func (s *RedisStore) Instances(ctx context.Context, maxAge time.Duration) ([]Instance, error) {
	all, err := s.rdb.HGetAll(ctx, s.instancesKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis instances: %w", err)
	}
	var out, stale []Instance
	for _, v := range all {
		var in Instance
		if json.Unmarshal([]byte(v), &in) != nil {
			continue
		}
		out = append(out, in)
		if time.Since(in.Updated) > staleInstance {
			stale = append(stale, in)
		}
	}
	for _, in := range stale { // gone for long: forget it
		s.rdb.HDel(ctx, s.instancesKey(), in.ID)
	}
	return aliveInstances(out, maxAge), nil
}

// staleInstance is how long a silent instance's heartbeat is kept before a reader drops it.
const staleInstance = time.Hour

func aliveInstances(all []Instance, maxAge time.Duration) []Instance {
	out := slices.DeleteFunc(all, func(in Instance) bool { return time.Since(in.Updated) > maxAge })
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.ID, b.ID) })
	return out
}
