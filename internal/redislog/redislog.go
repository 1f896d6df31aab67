// Package redislog routes go-redis's own log lines (a line per failed dial, pool notices) through
// log/slog at debug level: the programs log what a Redis failure means for them themselves, once.
package redislog

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

type logger struct{ log *slog.Logger }

func (l logger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, fmt.Sprintf(format, v...), "component", "go-redis")
}

// Use makes go-redis log through log, process-wide.
func Use(log *slog.Logger) { redis.SetLogger(logger{log}) }
