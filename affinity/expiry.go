package affinity

// expiryWheel files the memory store's records by the second their pin would expire, so that a sweep
// looks only at the pins due, not at every pin: a touch moves a pin's expiry without refiling it (it
// stays one atomic store), and a record found touched when its second comes is filed again at its
// new expiry. A live session is thus looked at about once per TTL, whatever the table's size (a walk
// of every record each second cost 0.3 s of CPU per second with a million pins: one cache miss each).
// Its fields are guarded by MemoryStore.mu.
type expiryWheel struct {
	due map[int64][]*record // unix second → records whose expiry falls just before it
}

// file files r at the second after its current expiry.
func (w *expiryWheel) file(r *record) {
	if w.due == nil {
		w.due = map[int64][]*record{}
	}
	sec := (r.lastSeen.Load()+int64(r.ttl))/1e9 + 1
	w.due[sec] = append(w.due[sec], r)
}

// take removes and returns the records filed at seconds up to now (unix nanoseconds).
func (w *expiryWheel) take(now int64, dst []*record) []*record {
	for sec, rs := range w.due {
		if sec*1e9 <= now {
			dst = append(dst, rs...)
			delete(w.due, sec)
		}
	}
	return dst
}
