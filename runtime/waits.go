package runtime

import "reflect"

// Waiting on several requests at once (MPI_Waitany, MPI_Waitsome,
// MPI_Testany, MPI_Testall). As MPI makes a completed request inactive,
// these calls set the slice entry of each request they report to nil, so a
// loop over Waitany sees every request once; nil entries are skipped. They
// may be called from any goroutine; two calls must not share a slice.

// Waitany blocks until one of reqs completes and returns its index, its
// status and its error, and sets reqs[index] to nil. With no request left
// (all nil) it returns index -1 at once.
func Waitany(reqs []*Request) (index int, st Status, err error) {
	if i, st, err, ok := testany(reqs); ok || i < 0 {
		return i, st, err
	}
	cases := make([]reflect.SelectCase, 0, len(reqs))
	idx := make([]int, 0, len(reqs))
	for i, r := range reqs {
		if r != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(r.Done())})
			idx = append(idx, i)
		}
	}
	chosen, _, _ := reflect.Select(cases)
	i := idx[chosen]
	st, err = reqs[i].Wait()
	reqs[i] = nil
	return i, st, err
}

// Waitsome blocks until at least one of reqs completes and returns the
// indices of all that have, with their statuses, setting those entries to
// nil; err is the first of their errors. With no request left it returns
// no index at once.
func Waitsome(reqs []*Request) (indices []int, sts []Status, err error) {
	i, st, err := Waitany(reqs)
	if i < 0 {
		return nil, nil, nil
	}
	indices, sts = []int{i}, []Status{st}
	for j, r := range reqs {
		if r == nil {
			continue
		}
		if done, st, e := r.Test(); done {
			indices, sts = append(indices, j), append(sts, st)
			reqs[j] = nil
			if err == nil {
				err = e
			}
		}
	}
	return indices, sts, err
}

// Testany reports whether one of reqs has completed, without blocking: if
// so, its index, status and error, and reqs[index] becomes nil. index is -1
// with done false while none has, and -1 with done true when every entry
// is nil (as MPI's Testany with no active request).
func Testany(reqs []*Request) (index int, done bool, st Status, err error) {
	i, st, err, ok := testany(reqs)
	if i < 0 {
		return -1, true, Status{}, nil
	}
	if !ok {
		return -1, false, Status{}, nil
	}
	return i, true, st, err
}

// testany finds a completed request: its index and outcome, ok true, and
// clears the entry; -1 if reqs has no request left.
func testany(reqs []*Request) (int, Status, error, bool) {
	last := -1
	for i, r := range reqs {
		if r == nil {
			continue
		}
		last = i
		if done, st, err := r.Test(); done {
			reqs[i] = nil
			return i, st, err, true
		}
	}
	return last, Status{}, nil, false
}

// Testall reports whether every request of reqs has completed, without
// blocking. If they have, it returns their statuses (in the order of reqs,
// a zero Status for nil entries) and the first error, and sets every entry
// to nil; otherwise it changes nothing.
func Testall(reqs []*Request) (done bool, sts []Status, err error) {
	for _, r := range reqs {
		if r != nil {
			if ok, _, _ := r.Test(); !ok {
				return false, nil, nil
			}
		}
	}
	sts = make([]Status, len(reqs))
	for i, r := range reqs {
		if r == nil {
			continue
		}
		st, e := r.Wait()
		sts[i] = st
		if err == nil {
			err = e
		}
		reqs[i] = nil
	}
	return true, sts, err
}
