package backends

import (
	"fmt"
	"testing"
	"time"

	"github.com/sidpin/sidpin/configs"
)

func TestLeastSessions(t *testing.T) {
	cases := []struct {
		weights    []int
		sessions   map[string]int
		handshakes map[string]int64
		want       string // the next picks
	}{
		{[]int{1, 1, 1}, map[string]int{"a": 3, "b": 1, "c": 2}, nil, "bbb"},
		{[]int{1, 3}, map[string]int{"a": 1, "b": 2}, nil, "bb"},                                      // 1/1 > 2/3
		{[]int{1, 3}, map[string]int{"a": 1, "b": 4}, nil, "aa"},                                      // 1/1 < 4/3
		{[]int{1, 1}, map[string]int{"a": 2, "b": 1}, map[string]int64{"b": 2}, "aa"},                 // 2 < 1+2
		{[]int{1, 1, 1}, map[string]int{"a": 5, "b": 5, "c": 5}, nil, "bcabca"},                       // ties take turns
		{[]int{1, 1, 1, 1}, nil, nil, "bcdabcda"},                                                     // no counts: all even
		{[]int{2, 1, 1}, map[string]int{"a": 2, "b": 1, "c": 1}, nil, "bcabca"},                       // equal per weight
		{[]int{1, 1, 1}, map[string]int{"a": 0, "b": 9, "c": 9}, map[string]int64{"a": 10}, "bcbbcb"}, // in flight counts; ties go to the first from the turn's start
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.weights, c.sessions, c.handshakes), func(t *testing.T) {
			p := nodePool(t, configs.BalanceLeastSessions, c.weights...)
			for name, h := range c.handshakes {
				p.Node(name).handshakes.Store(h)
			}
			got := ""
			for range len(c.want) {
				n, err := p.pick(c.sessions, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				got += n.Name
			}
			if got != c.want {
				t.Errorf("picks %s, want %s", got, c.want)
			}
		})
	}
}
