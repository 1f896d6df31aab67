package affinity

import (
	"cmp"
	"slices"
	"strings"
	"sync"
)

// Helpers of the ClusterState part, shared by both stores.

// evictHandlers is the list of OnEvict functions.
type evictHandlers struct {
	mu  sync.Mutex
	fns []func(string)
}

func (h *evictHandlers) add(fn func(string)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fns = append(h.fns, fn)
}

func (h *evictHandlers) call(sid string) {
	h.mu.Lock()
	fns := h.fns
	h.mu.Unlock()
	for _, fn := range fns {
		fn(sid)
	}
}

// sortedRefs lists the drain marks in (pool, node) order.
func sortedRefs(set map[NodeRef]bool) []NodeRef {
	out := make([]NodeRef, 0, len(set))
	for r := range set {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b NodeRef) int {
		return cmp.Or(strings.Compare(a.Pool, b.Pool), strings.Compare(a.Node, b.Node))
	})
	return out
}
