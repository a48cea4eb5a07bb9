package patterns

import (
	"fmt"
	"hash/fnv"
	"math"

	"github.com/gorun-hpc/gorun/runtime"
)

// The collective calls of this package agree before they act: a bad
// argument on one rank, or arguments that differ between ranks, is found
// by one Allreduce that every rank makes anyway, and every rank then
// returns the same error (the words of the rank that found it). Only the
// error path costs more collectives.

// agree returns, on every rank of c, the error of the lowest rank whose
// err is not nil, or nil if there is none. It is collective over c.
func agree(c *runtime.Comm, err error) error {
	if c.Size() <= 1 {
		return err
	}
	v := []int64{math.MaxInt64}
	if err != nil {
		v[0] = int64(c.Rank())
	}
	if e := runtime.Allreduce(c, v, v, runtime.Min); e != nil {
		return e
	}
	if v[0] == math.MaxInt64 {
		return nil
	}
	return share(c, int(v[0]), err)
}

// share makes rank root's err every rank's error: root returns err, the
// others an error with its words and kind. It is collective over c.
func share(c *runtime.Comm, root int, err error) error {
	var msg string
	kind := kindOther
	if c.Rank() == root {
		msg, kind = err.Error(), kindOf(err)
	}
	k := []int64{kind}
	if e := runtime.Bcast(c, k, root); e != nil {
		return e
	}
	s, e := bcastString(c, root, msg)
	if e != nil {
		return e
	}
	if c.Rank() == root {
		return err
	}
	return &remote{msg: s, kind: k[0]}
}

// bcastString sends root's s to every rank of c. It is collective.
func bcastString(c *runtime.Comm, root int, s string) (string, error) {
	n := []int64{int64(len(s))}
	if err := runtime.Bcast(c, n, root); err != nil {
		return "", err
	}
	if n[0] == 0 {
		return "", nil
	}
	b := make([]byte, n[0])
	if c.Rank() == root {
		copy(b, s)
	}
	if err := runtime.Bcast(c, b, root); err != nil {
		return "", err
	}
	return string(b), nil
}

// field is a value every rank of a collective call must pass alike: its
// name, a number that differs when it does (a hash for a shape), and how
// to show it in an error.
type field struct {
	name string
	v    int64 // never math.MinInt64
	show string
}

// check is the agreement of a collective call: local is this rank's own
// argument error (nil if none) and fields the values that must agree. It
// returns, on every rank, nil or the same error: the lowest erring rank's
// own error, else the first field that differs, naming rank 0's
// value and the lowest rank whose value differs. It is collective over c;
// in the usual case one Allreduce.
func check(c *runtime.Comm, local error, fields ...field) error {
	if c.Size() <= 1 {
		return local
	}
	n := len(fields)
	rec := make([]int64, 2*n+1)
	for i, f := range fields {
		rec[i], rec[n+i] = f.v, -f.v
	}
	rec[2*n] = -1
	if local != nil {
		rec[2*n] = int64(c.Size() - c.Rank()) // the Max finds the lowest rank
	}
	if err := runtime.Allreduce(c, rec, rec, runtime.Max); err != nil {
		return err
	}
	if rec[2*n] > 0 {
		return share(c, c.Size()-int(rec[2*n]), local)
	}
	for i, f := range fields {
		if rec[i] == -rec[n+i] {
			continue
		}
		// Some rank differs: find the lowest one that differs from rank 0.
		all := make([]int64, c.Size())
		if err := runtime.Allgather(c, []int64{f.v}, all); err != nil {
			return err
		}
		r := 1
		for r < len(all) && all[r] == all[0] {
			r++
		}
		s0, err := bcastString(c, 0, f.show)
		if err != nil {
			return err
		}
		sr, err := bcastString(c, r, f.show)
		if err != nil {
			return err
		}
		return errInvalid("%s differs between ranks: rank 0 passed %s, rank %d passed %s", f.name, s0, r, sr)
	}
	return nil
}

// hashInts is a hash of xs for a field, never math.MinInt64.
func hashInts(xs ...int) int64 {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range xs {
		for i := range b {
			b[i] = byte(uint64(x) >> (8 * i))
		}
		h.Write(b[:])
	}
	return int64(h.Sum64() >> 2)
}

// hashString is a hash of s for a field, never math.MinInt64.
func hashString(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64() >> 2)
}

// intField is a field of one integer.
func intField(name string, v int) field {
	x := int64(v)
	if x == math.MinInt64 {
		x++ // -x must not overflow; the value is out of every range anyway
	}
	return field{name, x, fmt.Sprint(v)}
}
