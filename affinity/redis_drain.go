package affinity

import (
	"context"
	"fmt"
)

// Drain marks of a RedisStore (ClusterState): one set, read by every instance.

// SetDrain implements ClusterState.
func (s *RedisStore) SetDrain(ctx context.Context, ref NodeRef, draining bool) error {
	var err error
	if draining {
		err = s.rdb.SAdd(ctx, s.drainedKey(), nodeMember(ref.Pool, ref.Node)).Err()
	} else {
		err = s.rdb.SRem(ctx, s.drainedKey(), nodeMember(ref.Pool, ref.Node)).Err()
	}
	if err != nil {
		return fmt.Errorf("affinity: redis set drain %s/%s: %w", ref.Pool, ref.Node, err)
	}
	return nil
}

// Drained implements ClusterState.
func (s *RedisStore) Drained(ctx context.Context) ([]NodeRef, error) {
	members, err := s.rdb.SMembers(ctx, s.drainedKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("affinity: redis drained nodes: %w", err)
	}
	set := make(map[NodeRef]bool, len(members))
	for _, m := range members {
		if pool, node, ok := parseNodeMember(m); ok {
			set[NodeRef{Pool: pool, Node: node}] = true
		}
	}
	return sortedRefs(set), nil
}
