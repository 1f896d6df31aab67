package proxy

import "time"

// SetSessionSweepEvery sets how often the session log checks idle records, for proxies started
// afterwards.
func SetSessionSweepEvery(d time.Duration) { sessionSweepEvery = d }
