package patterns_test

import (
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/gorun-hpc/gorun/patterns"
)

// rankErrs collects one error per rank of each case of a bad-input test,
// to judge them once the ranks have returned: a collective call with bad
// input must return the same words on every rank.
type rankErrs struct {
	mu   sync.Mutex
	errs map[string][]error
	np   int
}

func newRankErrs(np int) *rankErrs { return &rankErrs{errs: map[string][]error{}, np: np} }

func (b *rankErrs) put(name string, rank int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.errs[name] == nil {
		b.errs[name] = make([]error, b.np)
	}
	b.errs[name][rank] = err
}

// check checks that the ranks in ranks (all if none) of every case
// returned an *OpError of op, naming the rank and wrapping target (nil:
// any error), all with the same cause's words, and returns the words by
// case.
func (b *rankErrs) check(t *testing.T, op string, target error, ranks ...int) map[string]string {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	words := map[string]string{}
	for name, errs := range b.errs {
		first, have := "", false
		for r, err := range errs {
			if len(ranks) > 0 && !slices.Contains(ranks, r) {
				continue
			}
			var oe *patterns.OpError
			switch {
			case err == nil:
				t.Errorf("%s: rank %d returned no error", name, r)
				continue
			case target != nil && !errors.Is(err, target):
				t.Errorf("%s: rank %d: %v, want %v", name, r, err, target)
				continue
			case !errors.As(err, &oe):
				t.Errorf("%s: rank %d: %T %v, want an *OpError", name, r, err, err)
				continue
			case oe.Op != op || oe.Rank != r:
				t.Errorf("%s: rank %d: the error names %s on rank %d, want %s on rank %d", name, r, oe.Op, oe.Rank, op, r)
			}
			msg := oe.Err.Error()
			if !have {
				first, have = msg, true
				words[name] = msg
			} else if msg != first {
				t.Errorf("%s: rank %d says %q, another rank %q", name, r, msg, first)
			}
		}
	}
	return words
}
