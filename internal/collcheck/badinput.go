package collcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gorun-hpc/gorun/runtime"
)

// A BadCase is a collective call in which one rank (Bad) passes arguments
// that are wrong on their own or that disagree with the other ranks'. The
// runtime must never hang on one and never return nil with data of another
// call: either every rank returns the same ErrInvalid and the communicator
// still works, or the world aborts with a cause that names the bad rank.
type BadCase struct {
	Name string
	// Bad returns the rank with the bad arguments among n.
	Bad func(n int) int
	// Informing is set when the call returns the same ErrInvalid on every
	// rank on the message path too (elsewhere only shared-memory
	// communicators promise that).
	Informing bool
	// Says is a part of the error's text that says what was wrong.
	Says string
	// Run makes the call on c as a rank with bad arguments (or not). It
	// returns the call's error and, when the call returned nil, a
	// description of wrong data, "" if the data is right.
	Run func(c *runtime.Comm, bad bool) (err error, wrong string)
}

func last(n int) int  { return n - 1 }
func first(n int) int { return 0 }

// BadCases are the cases of the collective-safety issue and their kin.
var BadCases = []BadCase{
	{"allreduce-short-recv", last, true, "recv has 3 elements", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 4)
		if bad {
			recv = recv[:3]
		}
		return sumCheck(c, runtime.Allreduce(c, []int64{1, 1, 1, 1}, recv, runtime.Sum), recv, int64(c.Size()))
	}},
	{"allreduce-float-band", first, true, "Band", func(c *runtime.Comm, bad bool) (error, string) {
		op := runtime.Sum
		if bad {
			op = runtime.Band
		}
		recv := make([]float64, 2)
		err := runtime.Allreduce(c, []float64{1, 1}, recv, op)
		return sumCheck(c, err, recv, float64(c.Size()))
	}},
	{"allreduce-other-op", last, false, "different ops", func(c *runtime.Comm, bad bool) (error, string) {
		op := runtime.Sum
		if bad {
			op = runtime.Max
		}
		recv := make([]int64, 4)
		return sumCheck(c, runtime.Allreduce(c, []int64{1, 1, 1, 1}, recv, op), recv, int64(c.Size()))
	}},
	{"allreduce-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		m := 4
		if bad {
			m = 5
		}
		recv := make([]int64, m)
		return sumCheck(c, runtime.Allreduce(c, ones(m), recv, runtime.Sum), recv, int64(c.Size()))
	}},
	{"allreduce-large-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		m := 20011 // ring algorithm
		if bad {
			m = 20000
		}
		recv := make([]int64, m)
		return sumCheck(c, runtime.Allreduce(c, ones(m), recv, runtime.Sum), recv, int64(c.Size()))
	}},
	{"allgather-short-recv", last, true, "recv has", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		recv := make([]int64, 2*n)
		if bad {
			recv = recv[:2*n-1]
		}
		err := runtime.Allgather(c, []int64{int64(c.Rank()), 7}, recv)
		if err != nil {
			return err, ""
		}
		for i := range n {
			if recv[2*i] != int64(i) || recv[2*i+1] != 7 {
				return nil, fmt.Sprintf("Allgather gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"alltoall-bad-length", last, true, "divisible by Size()", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		send, recv := make([]int64, n), make([]int64, n)
		for i := range send {
			send[i] = int64(100*c.Rank() + i)
		}
		if bad {
			send, recv = send[:n-1], recv[:n-1]
		}
		err := runtime.Alltoall(c, send, recv)
		if err != nil {
			return err, ""
		}
		for i := range n {
			if recv[i] != int64(100*i+c.Rank()) {
				return nil, fmt.Sprintf("Alltoall gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"split-bad-color", last, true, "color -5", func(c *runtime.Comm, bad bool) (error, string) {
		color := 0
		if bad {
			color = -5
		}
		s, err := c.Split(color, 0)
		if err != nil {
			return err, ""
		}
		defer s.Close()
		if s.Size() != c.Size() {
			return nil, fmt.Sprintf("Split gave a communicator of %d ranks", s.Size())
		}
		return nil, ""
	}},
	{"create-overlapping-group", last, true, "passed another group", func(c *runtime.Comm, bad bool) (error, string) {
		// Every rank passes all ranks but the first; the bad rank all
		// ranks but the last, which overlaps.
		drop := 0
		if bad {
			drop = c.Size() - 1
		}
		g, err := c.Group().Excl([]int{drop})
		if err != nil {
			return err, ""
		}
		s, err := c.Create(g)
		if err != nil {
			return err, ""
		}
		defer s.Close()
		return nil, fmt.Sprintf("Create gave a communicator of %d ranks", s.Size())
	}},
	{"neighbor-allgather-short-recv", last, false, "recv has 3 elements", func(c *runtime.Comm, bad bool) (error, string) {
		return ringCase(c, func(g *runtime.Cart) (error, string) {
			recv := make([]int64, 4)
			if bad {
				recv = recv[:3]
			}
			err := runtime.NeighborAllgather(g, []int64{int64(g.Rank()), 1}, recv)
			n, r := g.Size(), g.Rank()
			if want := []int64{int64((r + n - 1) % n), 1, int64((r + 1) % n), 1}; err == nil && !slices.Equal(recv, want) {
				return nil, fmt.Sprintf("NeighborAllgather gave %v, want %v", recv, want)
			}
			return err, ""
		})
	}},
	{"neighbor-alltoall-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		return ringCase(c, func(g *runtime.Cart) (error, string) {
			m := 2
			if bad {
				m = 3
			}
			send, recv := ones(2*m), make([]int64, 2*m)
			err := runtime.NeighborAlltoall(g, send, recv)
			if err == nil && !slices.Equal(recv, send) {
				return nil, fmt.Sprintf("NeighborAlltoall gave %v", recv)
			}
			return err, ""
		})
	}},
	{"bcast-root-out-of-range", last, false, "root 7 out of range", func(c *runtime.Comm, bad bool) (error, string) {
		return bcastCase(c, bad, 7, 4, 4)
	}},
	{"bcast-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		return bcastCase(c, bad, 1, 4, 4)
	}},
	{"bcast-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		return bcastCase(c, bad, 0, 5, 4)
	}},
	{"bcast-large-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		return bcastCase(c, bad, 0, 19999, 20000)
	}},
	{"reduce-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		root := 0
		if bad {
			root = 1
		}
		recv := make([]int64, 2)
		err := runtime.Reduce(c, []int64{1, 1}, recv, runtime.Sum, root)
		if err != nil || c.Rank() != 0 {
			return err, ""
		}
		return sumCheck(c, nil, recv, int64(c.Size()))
	}},
	{"reduce-short-recv-at-root", first, false, "recv has 1 elements", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 2)
		if bad {
			recv = recv[:1]
		}
		return runtime.Reduce(c, []int64{1, 1}, recv, runtime.Sum, 0), ""
	}},
	{"gather-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		root := 0
		if bad {
			root = 1
		}
		recv := make([]int64, c.Size())
		err := runtime.Gather(c, []int64{int64(c.Rank())}, recv, root)
		if err != nil || c.Rank() != 0 {
			return err, ""
		}
		for i, v := range recv {
			if v != int64(i) {
				return nil, fmt.Sprintf("Gather gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"gather-short-recv-at-root", first, false, "recv has", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, c.Size())
		if bad {
			recv = recv[:1]
		}
		return runtime.Gather(c, []int64{1}, recv, 0), ""
	}},
	{"gatherv-bad-displs-at-root", first, false, "does not fit", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		counts, displs := make([]int, n), make([]int, n)
		for i := range n {
			counts[i], displs[i] = 1, i
		}
		if bad {
			displs[n-1] = n
		}
		return runtime.Gatherv(c, []int64{1}, make([]int64, n), counts, displs, 0), ""
	}},
	{"scatter-short-send-at-root", first, false, "send has", func(c *runtime.Comm, bad bool) (error, string) {
		send := make([]int64, c.Size())
		if bad {
			send = send[:1]
		}
		return runtime.Scatter(c, send, make([]int64, 1), 0), ""
	}},
	{"scatter-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		root := 0
		if bad {
			root = 1
		}
		send := make([]int64, c.Size())
		for i := range send {
			send[i] = int64(10 + i)
		}
		recv := []int64{0}
		err := runtime.Scatter(c, send, recv, root)
		if err == nil && recv[0] != int64(10+c.Rank()) {
			return nil, fmt.Sprintf("Scatter gave %v", recv)
		}
		return err, ""
	}},
	{"scan-short-recv", last, false, "recv has", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 2)
		if bad {
			recv = recv[:1]
		}
		err := runtime.Scan(c, []int64{1, 1}, recv, runtime.Sum)
		if err == nil && recv[0] != int64(c.Rank()+1) {
			return nil, fmt.Sprintf("Scan gave %v", recv)
		}
		return err, ""
	}},
	{"bcast-where-others-allreduce", last, false, "different calls", func(c *runtime.Comm, bad bool) (error, string) {
		buf := []int64{1, 1, 1, 1}
		if bad {
			buf[0] = 42
			err := runtime.Bcast(c, buf, 0)
			if err == nil && buf[0] != 1 {
				return nil, fmt.Sprintf("Bcast gave %v", buf)
			}
			return err, ""
		}
		recv := make([]int64, 4)
		return sumCheck(c, runtime.Allreduce(c, buf, recv, runtime.Sum), recv, int64(c.Size()))
	}},
	{"barrier-where-others-gather", last, false, "different calls", func(c *runtime.Comm, bad bool) (error, string) {
		if bad {
			return c.Barrier(), ""
		}
		return runtime.Gather(c, []int64{1}, make([]int64, c.Size()), 0), ""
	}},
	// User ops (runtime.NewOp): every rank contributes the map x+1, so the
	// composition over ranks 0..r is x+r+1.
	{"allreduce-userop-wrong-type", last, true, "used with int64", func(c *runtime.Comm, bad bool) (error, string) {
		return withAffine(c, "affine", func(op runtime.Op) (error, string) {
			if bad {
				if err := runtime.Allreduce(c, []int64{1, 1}, make([]int64, 2), op); err != nil {
					return err, ""
				}
				return nil, "Allreduce with a user op on int64 returned nil"
			}
			recv := make([]uint64, 2)
			return affineCheck(runtime.Allreduce(c, []uint64{1<<32 | 1, 1<<32 | 1}, recv, op), recv, c.Size())
		})
	}},
	{"allreduce-userop-short-recv", last, true, "recv has 1 elements", func(c *runtime.Comm, bad bool) (error, string) {
		return withAffine(c, "affine", func(op runtime.Op) (error, string) {
			recv := make([]uint64, 2)
			if bad {
				recv = recv[:1]
			}
			return affineCheck(runtime.Allreduce(c, []uint64{1<<32 | 1, 1<<32 | 1}, recv, op), recv, c.Size())
		})
	}},
	{"scan-userop-short-recv", last, false, "recv has 1 elements", func(c *runtime.Comm, bad bool) (error, string) {
		return withAffine(c, "affine", func(op runtime.Op) (error, string) {
			recv := make([]uint64, 2)
			if bad {
				recv = recv[:1]
			}
			return affineCheck(runtime.Scan(c, []uint64{1<<32 | 1, 1<<32 | 1}, recv, op), recv, c.Rank()+1)
		})
	}},
	{"reduce-userop-other-name", last, false, "different ops", func(c *runtime.Comm, bad bool) (error, string) {
		name := "affine"
		if bad {
			name = "compose" // another code in the call word (see Op.wordCode)
		}
		return withAffine(c, name, func(op runtime.Op) (error, string) {
			var recv []uint64
			if c.Rank() == 0 {
				recv = make([]uint64, 2)
			}
			err := runtime.Reduce(c, []uint64{1<<32 | 1, 1<<32 | 1}, recv, op, 0)
			if c.Rank() != 0 {
				return err, ""
			}
			return affineCheck(err, recv, c.Size())
		})
	}},
}

// withAffine runs f with Affine as a user op of that name.
func withAffine(c *runtime.Comm, name string, f func(op runtime.Op) (error, string)) (error, string) {
	op, err := runtime.NewOp(name, Affine, false)
	if err != nil {
		return err, ""
	}
	defer op.Free()
	return f(op)
}

// affineCheck checks, when err is nil, that every element of got is the
// map x+k.
func affineCheck(err error, got []uint64, k int) (error, string) {
	if err != nil {
		return err, ""
	}
	for _, v := range got {
		if v != 1<<32|uint64(k) {
			return nil, fmt.Sprintf("result %#x, want every element %#x", got, 1<<32|uint64(k))
		}
	}
	return nil, ""
}

// ringCase runs call on a periodic 1-d grid of c's ranks.
func ringCase(c *runtime.Comm, call func(g *runtime.Cart) (error, string)) (error, string) {
	g, err := c.Cart([]int{c.Size()}, []bool{true})
	if err != nil {
		return err, ""
	}
	defer g.Close()
	return call(g)
}

func ones(m int) []int64 {
	v := make([]int64, m)
	for i := range v {
		v[i] = 1
	}
	return v
}

// sumCheck checks, when err is nil, that every element of got is want.
func sumCheck[T int64 | float64](c *runtime.Comm, err error, got []T, want T) (error, string) {
	if err != nil {
		return err, ""
	}
	for _, v := range got {
		if v != want {
			return nil, fmt.Sprintf("result %v, want every element %v", got, want)
		}
	}
	return nil, ""
}

// bcastCase broadcasts m elements from root 0, where the bad rank passes
// root rootBad and mBad elements.
func bcastCase(c *runtime.Comm, bad bool, rootBad, mBad, m int) (error, string) {
	root := 0
	if bad {
		root, m = rootBad, mBad
	}
	buf := make([]int64, m)
	if c.Rank() == root {
		for i := range buf {
			buf[i] = 42
		}
	}
	err := runtime.Bcast(c, buf, root)
	if err == nil {
		for _, v := range buf {
			if v != 42 {
				return nil, fmt.Sprintf("Bcast gave %v", buf[:min(len(buf), 8)])
			}
		}
	}
	return err, ""
}

// Outcome is one rank's result of a BadCase and of the calls after it.
type Outcome struct {
	Rank  int
	Err   error  // of the bad call
	Wrong string // wrong data the bad call returned with nil
	After error  // of the Allreduce and Bcast that follow it
}

// RunBad runs case bc on c, then an Allreduce and a Bcast to see whether c
// still works, and returns this rank's outcome. With late > 0 the bad rank
// first does a Barrier with the others and then sleeps that long before
// its call, so that the others' calls stall waiting for it.
func RunBad(c *runtime.Comm, bc BadCase, late time.Duration) Outcome {
	o := Outcome{Rank: c.Rank()}
	bad := c.Rank() == bc.Bad(c.Size())
	if late > 0 {
		if o.Err = c.Barrier(); o.Err != nil {
			return o
		}
		if bad {
			time.Sleep(late)
		}
	}
	o.Err, o.Wrong = bc.Run(c, bad)
	sum := []int64{0}
	if err := runtime.Allreduce(c, []int64{1}, sum, runtime.Sum); err != nil {
		o.After = err
	} else if sum[0] != int64(c.Size()) {
		o.After = fmt.Errorf("Allreduce after the bad call gave %d, want %d", sum[0], c.Size())
	} else {
		b := []int64{int64(c.Rank())}
		if err := runtime.Bcast(c, b, c.Size()-1); err != nil {
			o.After = err
		} else if b[0] != int64(c.Size()-1) {
			o.After = fmt.Errorf("Bcast after the bad call gave %d, want %d", b[0], c.Size()-1)
		}
	}
	return o
}

// Judge checks the outcomes of bc on all n ranks. shared says the
// communicator compares calls in shared memory (one node, shared memory
// allowed), where every case must end in the same ErrInvalid everywhere.
// It returns what is wrong, or nil.
func Judge(bc BadCase, n int, shared bool, outs []Outcome) error {
	bad := bc.Bad(n)
	var errs []string
	for _, o := range outs {
		if o.Wrong != "" {
			errs = append(errs, fmt.Sprintf("rank %d: returned nil with wrong data: %s", o.Rank, o.Wrong))
		}
	}
	aborted := slices.ContainsFunc(outs, func(o Outcome) bool {
		return errors.Is(o.Err, runtime.ErrAborted) || errors.Is(o.After, runtime.ErrAborted)
	})
	if !aborted {
		// The same ErrInvalid everywhere, naming the bad rank, and the
		// communicator still works.
		var cause string
		for _, o := range outs {
			switch {
			case !errors.Is(o.Err, runtime.ErrInvalid):
				errs = append(errs, fmt.Sprintf("rank %d: err = %v, want ErrInvalid", o.Rank, o.Err))
			case o.After != nil:
				errs = append(errs, fmt.Sprintf("rank %d: the communicator does not work after the error: %v", o.Rank, o.After))
			default:
				c := Cause(o.Err)
				if cause == "" {
					cause = c
				} else if c != cause {
					errs = append(errs, fmt.Sprintf("rank %d: cause %q differs from another rank's %q", o.Rank, c, cause))
				}
			}
		}
		if cause != "" && (!strings.Contains(cause, fmt.Sprintf("rank %d", bad)) || !strings.Contains(cause, bc.Says)) {
			errs = append(errs, fmt.Sprintf("cause %q does not name rank %d and %q", cause, bad, bc.Says))
		}
	} else {
		if shared {
			errs = append(errs, "the world aborted on a shared-memory communicator, where every rank should return ErrInvalid")
		}
		if bc.Informing && !shared {
			errs = append(errs, "the world aborted in a call that passes errors on to every rank")
		}
		// Every rank fails, in the call or right after, with a cause that
		// says what went wrong.
		for _, o := range outs {
			e := o.Err
			if e == nil {
				e = o.After
			}
			if e == nil {
				errs = append(errs, fmt.Sprintf("rank %d: no error after the world aborted", o.Rank))
				continue
			}
			if !strings.Contains(e.Error(), bc.Says) {
				errs = append(errs, fmt.Sprintf("rank %d: error %q does not say %q", o.Rank, e, bc.Says))
			}
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}

// Cause strips the part of an error that names the calling rank.
func Cause(err error) string {
	var oe *runtime.OpError
	if errors.As(err, &oe) {
		return strings.TrimPrefix(oe.Err.Error(), "runtime: ")
	}
	return err.Error()
}

// NonblockingBadCases are bad calls of the nonblocking collectives. They
// never compare calls in shared memory, so they are judged as on the
// message path whatever the communicator (Judge with shared false).
var NonblockingBadCases = []BadCase{
	{"iallreduce-short-recv", last, true, "recv has 3 elements", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 4)
		if bad {
			recv = recv[:3]
		}
		return sumCheck(c, wait(runtime.Iallreduce(c, []int64{1, 1, 1, 1}, recv, runtime.Sum)), recv, int64(c.Size()))
	}},
	{"iallreduce-large-float-band", first, true, "Band", func(c *runtime.Comm, bad bool) (error, string) {
		op := runtime.Sum
		if bad {
			op = runtime.Band
		}
		m := 20011 // ring, rendezvous
		recv := make([]float64, m)
		in := make([]float64, m)
		for i := range in {
			in[i] = 1
		}
		return sumCheck(c, wait(runtime.Iallreduce(c, in, recv, op)), recv, float64(c.Size()))
	}},
	{"iallreduce-other-op", last, false, "different ops", func(c *runtime.Comm, bad bool) (error, string) {
		op := runtime.Sum
		if bad {
			op = runtime.Max
		}
		recv := make([]int64, 4)
		return sumCheck(c, wait(runtime.Iallreduce(c, []int64{1, 1, 1, 1}, recv, op)), recv, int64(c.Size()))
	}},
	{"iallgather-short-recv", last, true, "recv has", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		recv := make([]int64, 2*n)
		if bad {
			recv = recv[:2*n-1]
		}
		if err := wait(runtime.Iallgather(c, []int64{int64(c.Rank()), 7}, recv)); err != nil {
			return err, ""
		}
		for i := range n {
			if recv[2*i] != int64(i) || recv[2*i+1] != 7 {
				return nil, fmt.Sprintf("Iallgather gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"ialltoall-bad-length", first, true, "divisible by Size()", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		send, recv := make([]int64, n), make([]int64, n)
		for i := range send {
			send[i] = int64(100*c.Rank() + i)
		}
		if bad {
			send, recv = send[:n-1], recv[:n-1]
		}
		if err := wait(runtime.Ialltoall(c, send, recv)); err != nil {
			return err, ""
		}
		for i := range n {
			if recv[i] != int64(100*i+c.Rank()) {
				return nil, fmt.Sprintf("Ialltoall gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"ibcast-root-out-of-range", last, false, "root 7 out of range", func(c *runtime.Comm, bad bool) (error, string) {
		return ibcastCase(c, bad, 7, 4, 4, false)
	}},
	{"ibcast-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		return ibcastCase(c, bad, 1, 4, 4, false)
	}},
	{"ibcast-large-other-count", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		return ibcastCase(c, bad, 0, 19999, 20000, false)
	}},
	{"ibcast-where-others-bcast", last, false, "different calls", func(c *runtime.Comm, bad bool) (error, string) {
		return ibcastCase(c, bad, 0, 4, 4, true)
	}},
	{"ireduce-short-recv-at-root", first, false, "recv has 1 elements", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 2)
		if bad {
			recv = recv[:1]
		}
		return wait(runtime.Ireduce(c, []int64{1, 1}, recv, runtime.Sum, 0)), ""
	}},
	{"igather-other-root", last, false, "different roots", func(c *runtime.Comm, bad bool) (error, string) {
		root := 0
		if bad {
			root = 1
		}
		recv := make([]int64, c.Size())
		err := wait(runtime.Igather(c, []int64{int64(c.Rank())}, recv, root))
		if err != nil || c.Rank() != 0 {
			return err, ""
		}
		for i, v := range recv {
			if v != int64(i) {
				return nil, fmt.Sprintf("Igather gave %v", recv)
			}
		}
		return nil, ""
	}},
	{"iscatter-short-send-at-root", first, false, "send has", func(c *runtime.Comm, bad bool) (error, string) {
		send := make([]int64, c.Size())
		if bad {
			send = send[:1]
		}
		return wait(runtime.Iscatter(c, send, make([]int64, 1), 0)), ""
	}},
	{"iscan-short-recv", last, false, "recv has", func(c *runtime.Comm, bad bool) (error, string) {
		recv := make([]int64, 2)
		if bad {
			recv = recv[:1]
		}
		err := wait(runtime.Iscan(c, []int64{1, 1}, recv, runtime.Sum))
		if err == nil && recv[0] != int64(c.Rank()+1) {
			return nil, fmt.Sprintf("Iscan gave %v", recv)
		}
		return err, ""
	}},
	{"ireducescatter-other-counts", last, false, "different counts", func(c *runtime.Comm, bad bool) (error, string) {
		n := c.Size()
		counts := make([]int, n)
		for i := range counts {
			counts[i] = 2
		}
		if bad {
			counts[0] = 3 // rank 0 gets 3 elements from this rank, 2 from the others
		}
		total := 0
		for _, k := range counts {
			total += k
		}
		recv := make([]int64, counts[c.Rank()])
		return wait(runtime.IreduceScatter(c, ones(total), recv, counts, runtime.Sum)), ""
	}},
	{"ibarrier-where-others-barrier", last, false, "different calls", func(c *runtime.Comm, bad bool) (error, string) {
		if bad {
			return wait(c.Ibarrier()), ""
		}
		return c.Barrier(), ""
	}},
}

// wait completes a nonblocking call: the error of the call, else of its
// request.
func wait(r *runtime.Request, err error) error {
	if err != nil {
		return err
	}
	_, err = r.Wait()
	return err
}

// ibcastCase is bcastCase with Ibcast; with blocking, the bad rank calls
// Bcast instead where the others call Ibcast.
func ibcastCase(c *runtime.Comm, bad bool, rootBad, mBad, m int, blocking bool) (error, string) {
	root := 0
	if bad {
		root, m = rootBad, mBad
	}
	buf := make([]int64, m)
	if c.Rank() == root {
		for i := range buf {
			buf[i] = 42
		}
	}
	var err error
	if bad && blocking {
		err = runtime.Bcast(c, buf, root)
	} else {
		err = wait(runtime.Ibcast(c, buf, root))
	}
	if err == nil {
		for _, v := range buf {
			if v != 42 {
				return nil, fmt.Sprintf("Ibcast gave %v", buf[:min(len(buf), 8)])
			}
		}
	}
	return err, ""
}
