package admin

import "time"

// SetClock makes the sign-in table read the time from now, for tests of session expiry.
func SetClock(s *Server, now func() time.Time) {
	s.sessions.mu.Lock()
	defer s.sessions.mu.Unlock()
	s.sessions.now = now
}

// TakeSample adds a sample of the page's history now.
func TakeSample(s *Server) { s.takeSample(time.Now()) }
