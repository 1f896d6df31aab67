package configs

import (
	"errors"
	"testing"
)

// TestBalancePolicies: every listed policy is accepted, and an unknown one is refused with the list.
func TestBalancePolicies(t *testing.T) {
	for _, name := range BalancePolicies {
		if _, err := Parse("t.yaml", []byte("pools: [{name: p, balance: "+name+", nodes: [{name: a, url: 'http://a:1'}]}]")); err != nil {
			t.Errorf("balance: %s refused: %v", name, err)
		}
	}
	_, err := Parse("t.yaml", []byte("pools: [{name: p, balance: fastest, nodes: [{name: a, url: 'http://a:1'}]}]"))
	var errs *Errors
	if !errors.As(err, &errs) || len(errs.List) != 1 {
		t.Fatalf("want one error, got %v", err)
	}
	const want = `"fastest" is not a policy (use least-sessions, round-robin or random-two)`
	if fe := errs.List[0]; fe.Path != "pools[0].balance" || fe.Msg != want {
		t.Errorf("got %s: %s, want pools[0].balance: %s", fe.Path, fe.Msg, want)
	}
}
