package runtime_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/gorun-hpc/gorun/internal/collcheck"
	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Element types beyond numbers: structs and arrays without pointers move
// through every point-to-point call and data-movement collective; a type
// with a pointer is the same ErrInvalid everywhere; each point-to-point
// message carries its element type and the receive checks it.

func init() {
	ranktest.Register("types-suite", typesSuite)
}

// Particle has a composite layout: 24 bytes of float64, an int32, a bool,
// three int8 (no padding at the end: 32 bytes).
type Particle struct {
	Pos   [3]float64
	ID    int32
	Alive bool
	Kind  [3]int8
}

func genParticle(r *rand.Rand) Particle {
	return Particle{
		Pos:   [3]float64{r.Float64(), r.Float64(), r.Float64()},
		ID:    int32(r.Uint32()),
		Alive: r.IntN(2) == 1,
		Kind:  [3]int8{int8(r.Uint32()), int8(r.Uint32()), int8(r.Uint32())},
	}
}

// structMovement moves Particles with every point-to-point call and
// data-movement collective, checked against what every rank can compute.
func structMovement(c *runtime.Comm, seed uint64) error {
	n, me := c.Size(), c.Rank()
	in := func(s uint64, rank, m int) []Particle { return collcheck.Input(s, rank, m, genParticle) }
	next, prev := (me+1)%n, (me+n-1)%n
	// Send/Recv, Isend/Irecv, Sendrecv around a ring: eager and rendezvous.
	for _, m := range []int{0, 1, 7, 5000} {
		got := make([]Particle, m)
		rq, err := runtime.Irecv(c, got, prev, m)
		if err != nil {
			return err
		}
		if err := runtime.Send(c, in(seed, me, m), next, m); err != nil {
			return err
		}
		st, err := rq.Wait()
		if err != nil {
			return err
		}
		if err := collcheck.Equal(got, in(seed, prev, m), 0); err != nil || st.Count != m {
			return fmt.Errorf("ring of %d particles: count %d: %v", m, st.Count, err)
		}
		got2 := make([]Particle, m)
		sq, err := runtime.Isend(c, in(seed+1, me, m), next, 100+m)
		if err != nil {
			return err
		}
		if _, err := runtime.Recv(c, got2, prev, 100+m); err != nil {
			return err
		}
		if _, err := sq.Wait(); err != nil {
			return err
		}
		if err := collcheck.Equal(got2, in(seed+1, prev, m), 0); err != nil {
			return fmt.Errorf("Isend/Recv of %d particles: %v", m, err)
		}
		got3 := make([]Particle, m)
		if _, err := runtime.Sendrecv(c, in(seed+2, me, m), next, 200+m, got3, prev, 200+m); err != nil {
			return err
		}
		if err := collcheck.Equal(got3, in(seed+2, prev, m), 0); err != nil {
			return fmt.Errorf("Sendrecv of %d particles: %v", m, err)
		}
	}
	for _, m := range []int{1, 3, 3000} {
		s := seed + uint64(m)
		everyone := make([]Particle, 0, n*m)
		for q := range n {
			everyone = append(everyone, in(s, q, m)...)
		}
		for root := range n {
			b := in(s, me, m)
			if err := runtime.Bcast(c, b, root); err != nil {
				return err
			}
			if err := collcheck.Equal(b, in(s, root, m), 0); err != nil {
				return fmt.Errorf("Bcast from %d, %d particles: %v", root, m, err)
			}
		}
		root := n / 2
		var g []Particle
		if me == root {
			g = make([]Particle, n*m)
		}
		if err := runtime.Gather(c, in(s, me, m), g, root); err != nil {
			return err
		}
		if me == root {
			if err := collcheck.Equal(g, everyone, 0); err != nil {
				return fmt.Errorf("Gather: %v", err)
			}
		}
		all := make([]Particle, n*m)
		if err := runtime.Allgather(c, in(s, me, m), all); err != nil {
			return err
		}
		if err := collcheck.Equal(all, everyone, 0); err != nil {
			return fmt.Errorf("Allgather: %v", err)
		}
		mine := make([]Particle, m)
		var src []Particle
		if me == root {
			src = everyone
		}
		if err := runtime.Scatter(c, src, mine, root); err != nil {
			return err
		}
		if err := collcheck.Equal(mine, in(s, me, m), 0); err != nil {
			return fmt.Errorf("Scatter: %v", err)
		}
		// Alltoall: block j of rank i is in(s+7, i*n+j, m).
		send := make([]Particle, 0, n*m)
		for j := range n {
			send = append(send, in(s+7, me*n+j, m)...)
		}
		recv := make([]Particle, n*m)
		if err := runtime.Alltoall(c, send, recv); err != nil {
			return err
		}
		for i := range n {
			if err := collcheck.Equal(recv[i*m:(i+1)*m], in(s+7, i*n+me, m), 0); err != nil {
				return fmt.Errorf("Alltoall block from %d: %v", i, err)
			}
		}
		// The v-forms: rank q has q+1 particles, blocks in reverse order
		// with a gap of one.
		counts, displs := make([]int, n), make([]int, n)
		off := 0
		for q := n - 1; q >= 0; q-- {
			counts[q], displs[q] = q+1, off
			off += q + 2
		}
		gv := make([]Particle, off)
		if err := runtime.Allgatherv(c, in(s+3, me, counts[me]), gv, counts, displs); err != nil {
			return err
		}
		var gr []Particle
		if me == root {
			gr = make([]Particle, off)
		}
		if err := runtime.Gatherv(c, in(s+3, me, counts[me]), gr, counts, displs, root); err != nil {
			return err
		}
		for q := range n {
			want := in(s+3, q, counts[q])
			if err := collcheck.Equal(gv[displs[q]:displs[q]+counts[q]], want, 0); err != nil {
				return fmt.Errorf("Allgatherv block %d: %v", q, err)
			}
			if me == root {
				if err := collcheck.Equal(gr[displs[q]:displs[q]+counts[q]], want, 0); err != nil {
					return fmt.Errorf("Gatherv block %d: %v", q, err)
				}
			}
		}
		sv := make([]Particle, counts[me])
		if err := runtime.Scatterv(c, gv, counts, displs, sv, root); err != nil {
			return err
		}
		if err := collcheck.Equal(sv, in(s+3, me, counts[me]), 0); err != nil {
			return fmt.Errorf("Scatterv: %v", err)
		}
		// Alltoallv: rank i sends (i+j)%3 particles in(s+9, i*n+j) to j.
		sc, sd, rc, rd := make([]int, n), make([]int, n), make([]int, n), make([]int, n)
		var sb []Particle
		rsize := 0
		for j := range n {
			sc[j], sd[j] = (me+j)%3, len(sb)
			sb = append(sb, in(s+9, me*n+j, sc[j])...)
			rc[j], rd[j] = (j+me)%3, rsize
			rsize += rc[j]
		}
		rb := make([]Particle, rsize)
		if err := runtime.Alltoallv(c, sb, sc, sd, rb, rc, rd); err != nil {
			return err
		}
		for j := range n {
			if err := collcheck.Equal(rb[rd[j]:rd[j]+rc[j]], in(s+9, j*n+me, rc[j]), 0); err != nil {
				return fmt.Errorf("Alltoallv from %d: %v", j, err)
			}
		}
	}
	return c.Barrier()
}

func TestStructElements(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		for _, np := range []int{1, 2, 3, 4} {
			if np < sc.cfg.LocalNodes {
				continue
			}
			t.Run(fmt.Sprint(sc.name, "/np", np), func(t *testing.T) {
				cfg := ranktest.Config{Runtime: sc.cfg}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					if err := structMovement(c, 5); err != nil {
						t.Fatal(err)
					}
				})
			})
		}
	}
}

// Named has a pointer: every call rejects it, naming the type and field.
type Named struct {
	X    float64
	Name string
}

// NamedTwin is Named without its pointer, of the same size.
type NamedTwin struct {
	X    float64
	Name [2]uintptr
}

const namedErr = "element type runtime_test.Named holds a pointer (field Name string)"

// A pointer type is ErrInvalid on every rank, before anything moves, in
// point-to-point calls and in collectives (also when only one rank uses
// it), and the communicator stays usable. On the message path (two nodes)
// only the calls that pass argument errors on are tried: in the others an
// argument error aborts the world, naming it, as any does there.
func TestPointerElements(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			const np = 4
			errs := make([][]error, np)
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				me := c.Rank()
				v := []Named{{1, "a"}}
				for _, err := range []error{
					runtime.Send(c, v, (me+1)%np, 0),
					func() error { _, err := runtime.Isend(c, v, (me+1)%np, 0); return err }(),
					func() error { _, err := runtime.Recv(c, v, runtime.AnySource, 0); return err }(),
					func() error { _, err := runtime.Irecv(c, v, runtime.AnySource, 0); return err }(),
					func() error { _, _, err := runtime.Iprobe[Named](c, runtime.AnySource, 0); return err }(),
					func() error {
						_, err := runtime.Sendrecv(c, v, runtime.ProcNull, 0, v, runtime.ProcNull, 0)
						return err
					}(),
				} {
					if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), namedErr) {
						t.Errorf("rank %d: point-to-point: %v, want ErrInvalid with %q", me, err, namedErr)
					}
				}
				// Every rank uses the pointer type.
				all := make([]Named, np)
				errs[me] = append(errs[me],
					runtime.Allgather(c, v, all),
					runtime.Alltoall(c, all, make([]Named, np)),
					runtime.Allreduce(c, v, v, runtime.Sum),
				)
				if sc.cfg.LocalNodes < 2 {
					errs[me] = append(errs[me],
						runtime.Bcast(c, v, 0),
						runtime.Gather(c, v, all, 1),
						runtime.Scatter(c, all, v, 1),
						runtime.Allgatherv(c, v, all, []int{1, 1, 1, 1}, []int{0, 1, 2, 3}),
					)
				}
				// Only rank 1 does: an informing call (Allgather) returns
				// its error on every rank on every path.
				if me == 1 {
					errs[me] = append(errs[me], runtime.Allgather(c, v, all))
				} else {
					errs[me] = append(errs[me], runtime.Allgather(c, []NamedTwin{{}}, make([]NamedTwin, np)))
				}
				// Still usable.
				sum := []int{0}
				if err := runtime.Allreduce(c, []int{me}, sum, runtime.Sum); err != nil || sum[0] != np*(np-1)/2 {
					t.Errorf("rank %d: Allreduce after: %v %v", me, sum, err)
				}
			})
			for r := range np {
				for i, err := range errs[r] {
					if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), namedErr) {
						t.Errorf("rank %d call %d: %v, want ErrInvalid with %q", r, i, err, namedErr)
					} else if trimRank(err) != trimRank(errs[0][i]) {
						t.Errorf("rank %d call %d: %v; rank 0 got %v", r, i, err, errs[0][i])
					}
				}
			}
		})
	}
}

// The mismatch matrix: every pair of element types below, sent one way and
// received the other, eager and rendezvous, into a posted receive and as
// an unexpected message (with a Probe first). The model: a receive takes a
// message of the same layout signature (sig, written out by hand here),
// and a receive into single bytes takes anything; anything else is
// ErrInvalid naming both types, and the next message is received fine.

type (
	Celsius float64
	Octet   uint8
	Vec3    struct{ X, Y, Z float64 }
	Pair    struct {
		A int32
		B float32
	}
	PairTwin struct {
		C int32
		D float32
	}
	ParticleTwin struct {
		Where [3]float64
		N     int32
		On    bool
		K     [3]int8
	}
)

type elemCase struct {
	name string
	sig  string // the layout signature: a kind name, or "composite:" and a name
	raw  bool
	size int
	// isend sends m elements whose bytes are pattern(i); irecv receives
	// into room for m elements; bytes returns the received bytes.
	isend func(c *runtime.Comm, m, dest, tag int) (*runtime.Request, error)
	irecv func(c *runtime.Comm, m, src, tag int) (*runtime.Request, func() []byte, error)
	probe func(c *runtime.Comm, src, tag int) (runtime.Status, error)
}

func pattern(i int) byte { return byte(i*7 + 3) }

func bytesOf[T any](s []T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(*new(T))))
}

func ec[T runtime.Elem](sig string) elemCase {
	size := int(unsafe.Sizeof(*new(T)))
	return elemCase{
		name: reflect.TypeFor[T]().String(), sig: sig, size: size,
		raw: sig == "uint8" && size == 1,
		isend: func(c *runtime.Comm, m, dest, tag int) (*runtime.Request, error) {
			s := make([]T, m)
			for i := range bytesOf(s) {
				bytesOf(s)[i] = pattern(i)
			}
			return runtime.Isend(c, s, dest, tag)
		},
		irecv: func(c *runtime.Comm, m, src, tag int) (*runtime.Request, func() []byte, error) {
			s := make([]T, m)
			r, err := runtime.Irecv(c, s, src, tag)
			return r, func() []byte { return bytesOf(s) }, err
		},
		probe: func(c *runtime.Comm, src, tag int) (runtime.Status, error) { return runtime.Probe[T](c, src, tag) },
	}
}

var elemCases = []elemCase{
	ec[bool]("bool"), ec[int]("int"), ec[int8]("int8"), ec[int16]("int16"), ec[int32]("int32"),
	ec[int64]("int64"), ec[uint]("uint"), ec[uint8]("uint8"), ec[uint16]("uint16"), ec[uint32]("uint32"),
	ec[uint64]("uint64"), ec[uintptr]("uintptr"), ec[float32]("float32"), ec[float64]("float64"),
	ec[complex64]("complex64"), ec[complex128]("complex128"),
	ec[Celsius]("float64"), ec[Octet]("uint8"), ec[[2]float64]("float64"), ec[Vec3]("float64"),
	ec[[4]uint8]("uint8"), ec[runtime.Loc[int]]("int"), ec[runtime.Loc[float64]]("composite:loc-float64"),
	ec[Pair]("composite:pair"), ec[PairTwin]("composite:pair"), ec[Particle]("composite:particle"), ec[ParticleTwin]("composite:particle"),
}

// matrix runs the mismatch matrix between ranks 0 (sender) and 1, each pair
// eager and then rendezvous; every message is 96·k elements of the sent
// type, so a whole number of any receiving type (of 1 to 32 bytes, 24
// too) whenever signatures match.
func matrix(c *runtime.Comm, cases []elemCase, rendezvous bool) error {
	me := c.Rank()
	if c.Size() < 2 {
		return nil
	}
	tag := 0
	for _, s := range cases {
		for _, r := range cases {
			for _, big := range []bool{false, true} {
				if big && !rendezvous {
					continue
				}
				tag++
				m := 96
				if big {
					m = 96 * 683 // over the eager limit even for bytes
				}
				nbytes := m * s.size
				room := nbytes/r.size + 1
				posted := tag%2 == 0
				switch me {
				case 0:
					if posted {
						if err := c.Barrier(); err != nil {
							return err
						}
					}
					sq, err := s.isend(c, m, 1, tag)
					if err != nil {
						return err
					}
					if !posted {
						if err := c.Barrier(); err != nil {
							return err
						}
					}
					if _, err := sq.Wait(); err != nil {
						return fmt.Errorf("send of %s to %s: %v", s.name, r.name, err)
					}
				case 1:
					var rq *runtime.Request
					var got func() []byte
					var perr error
					var err error
					if posted {
						rq, got, err = r.irecv(c, room, 0, tag)
						if err != nil {
							return err
						}
						if err := c.Barrier(); err != nil {
							return err
						}
					} else {
						if err := c.Barrier(); err != nil {
							return err
						}
						var st runtime.Status
						st, perr = r.probe(c, 0, tag)
						if st.Bytes != nbytes || st.Source != 0 || st.Tag != tag {
							return fmt.Errorf("%s as %s: probe status %+v", s.name, r.name, st)
						}
						rq, got, err = r.irecv(c, room, 0, tag)
						if err != nil {
							return err
						}
					}
					st, err := rq.Wait()
					if !posted && causeOf(perr) != causeOf(err) {
						return fmt.Errorf("%s as %s: Probe said %v, Recv %v", s.name, r.name, perr, err)
					}
					ok := r.raw || s.sig == r.sig
					switch {
					case ok && err != nil:
						return fmt.Errorf("%s received as %s (big %v): %v", s.name, r.name, big, err)
					case ok:
						if st.Bytes != nbytes || st.Count != nbytes/r.size {
							return fmt.Errorf("%s received as %s: status %+v", s.name, r.name, st)
						}
						b := got()
						for i := range nbytes {
							if b[i] != pattern(i) {
								return fmt.Errorf("%s received as %s: byte %d = %d", s.name, r.name, i, b[i])
							}
						}
					case !errors.Is(err, runtime.ErrInvalid):
						return fmt.Errorf("%s received as %s: %v, want ErrInvalid", s.name, r.name, err)
					default:
						sent := "sent " + s.sig
						if strings.HasPrefix(s.sig, "composite") {
							sent = "sent a composite type"
						}
						if msg := err.Error(); !strings.Contains(msg, sent) || !strings.Contains(msg, "takes "+r.name) {
							return fmt.Errorf("%s received as %s: %q does not name both", s.name, r.name, msg)
						}
					}
				default:
					if err := c.Barrier(); err != nil {
						return err
					}
				}
			}
		}
	}
	return c.Barrier()
}

// causeOf is an error's text without the call and rank that saw it.
func causeOf(err error) string {
	if err == nil {
		return ""
	}
	_, cause, _ := strings.Cut(err.Error(), ": ")
	_, cause, _ = strings.Cut(cause, ": ")
	return cause
}

func TestTypeMismatchMatrix(t *testing.T) {
	for _, sc := range sendrecvConfigs {
		t.Run(sc.name, func(t *testing.T) {
			cfg := ranktest.Config{Runtime: sc.cfg}
			cfg.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
				if err := matrix(c, elemCases, true); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

// A message that is not a whole number of the receiving aggregate's
// elements is ErrInvalid; a receive into bytes takes it.
func TestTypeWholeElements(t *testing.T) {
	ranktest.Run(t, 2, func(t testing.TB, c *runtime.Comm) {
		if c.Rank() == 0 {
			for tag := range 2 {
				if err := runtime.Send(c, []float64{1, 2, 3, 4, 5}, 1, tag); err != nil {
					t.Fatal(err)
				}
			}
			return
		}
		_, err := runtime.Recv(c, make([]Vec3, 2), 0, 0)
		if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), "rank 0 sent 40 bytes of float64, not a whole number of runtime_test.Vec3") {
			t.Errorf("5 float64 as Vec3: %v", err)
		}
		b := make([]byte, 64)
		st, err := runtime.Recv(c, b, 0, 1)
		if err != nil || st.Count != 40 {
			t.Errorf("5 float64 as bytes: %+v %v", st, err)
		}
	})
}

// MinLoc and MaxLoc against a naive model at 1..9 ranks, with many ties
// (values from a small set), through Allreduce, Reduce, Scan and Exscan
// (collcheck.Reductions), and ReduceScatterBlock.
func TestMinMaxLoc(t *testing.T) {
	minloc := func(a, b runtime.Loc[float64]) runtime.Loc[float64] {
		if b.Value < a.Value || b.Value == a.Value && b.Index < a.Index {
			return b
		}
		return a
	}
	maxloc := func(a, b runtime.Loc[float64]) runtime.Loc[float64] {
		if b.Value > a.Value || b.Value == a.Value && b.Index < a.Index {
			return b
		}
		return a
	}
	gen := func(r *rand.Rand) runtime.Loc[float64] {
		return runtime.Loc[float64]{Value: float64(r.IntN(4)) - 1.5, Index: r.IntN(40)}
	}
	type pairI32 struct { // a Loc by shape, of another name
		Value int32
		Index int
	}
	gen32 := func(r *rand.Rand) pairI32 { return pairI32{int32(r.IntN(3)), r.IntN(20)} }
	min32 := func(a, b pairI32) pairI32 {
		if b.Value < a.Value || b.Value == a.Value && b.Index < a.Index {
			return b
		}
		return a
	}
	for np := 1; np <= 9; np++ {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				for _, m := range []int{0, 1, 7, 1000, 5000} {
					seed := uint64(np*100 + m)
					for _, oc := range []collcheck.OpCase[runtime.Loc[float64]]{{Op: runtime.MinLoc, F: minloc}, {Op: runtime.MaxLoc, F: maxloc}} {
						if err := collcheck.Reductions(c, seed, m, gen, oc); err != nil {
							t.Fatal(err)
						}
					}
					if err := collcheck.Reductions(c, seed, m, gen32, collcheck.OpCase[pairI32]{Op: runtime.MinLoc, F: min32}); err != nil {
						t.Fatal(err)
					}
				}
				// ReduceScatterBlock: 3 pairs per rank.
				n, me := c.Size(), c.Rank()
				send := collcheck.Input(9, me, 3*n, gen)
				recv := make([]runtime.Loc[float64], 3)
				if err := runtime.ReduceScatterBlock(c, send, recv, runtime.MaxLoc); err != nil {
					t.Fatal(err)
				}
				all := collcheck.Naive(9, 0, n, 3*n, gen, maxloc)
				if err := collcheck.Equal(recv, all[3*me:3*me+3], 0); err != nil {
					t.Errorf("ReduceScatterBlock MaxLoc: %v", err)
				}
			})
		})
	}
}

// Ops and element types that do not go together: the same ErrInvalid on
// every rank, naming op and type; the communicator stays usable.
func TestOpTypeErrors(t *testing.T) {
	const np = 3
	type call struct {
		run  func(c *runtime.Comm) error
		want string
	}
	loc := []runtime.Loc[float64]{{1, 2}}
	calls := []call{
		{func(c *runtime.Comm) error { return runtime.Allreduce(c, loc, loc, runtime.Sum) }, "op Sum is not defined for runtime.Loc[float64]"},
		{func(c *runtime.Comm) error { return runtime.Allreduce(c, loc, loc, runtime.Min) }, "op Min is not defined for runtime.Loc[float64]"},
		{func(c *runtime.Comm) error { v := []float64{1}; return runtime.Allreduce(c, v, v, runtime.MinLoc) }, "op MinLoc is not defined for float64"},
		{func(c *runtime.Comm) error { v := []Particle{{}}; return runtime.Reduce(c, v, v, runtime.Sum, 0) }, "op Sum is not defined for runtime_test.Particle"},
		{func(c *runtime.Comm) error {
			v := []runtime.Loc[complex128]{{}}
			return runtime.Scan(c, v, v, runtime.MaxLoc)
		}, "op MaxLoc is not defined for runtime.Loc[complex128]"},
		{func(c *runtime.Comm) error { v := []bool{true}; return runtime.Allreduce(c, v, v, runtime.Sum) }, "op Sum is not defined for bool"},
	}
	errs := make([][]error, np)
	ranktest.Run(t, np, func(t testing.TB, c *runtime.Comm) {
		for _, cl := range calls {
			errs[c.Rank()] = append(errs[c.Rank()], cl.run(c))
		}
		// bool takes the logical ops.
		v := []bool{c.Rank() == 1, true, c.Rank() != 0}
		and, or, xor := make([]bool, 3), make([]bool, 3), make([]bool, 3)
		for _, x := range []struct {
			op  runtime.Op
			out []bool
		}{{runtime.Land, and}, {runtime.Lor, or}, {runtime.Lxor, xor}} {
			if err := runtime.Allreduce(c, v, x.out, x.op); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(and, []bool{false, true, false}) || !slices.Equal(or, []bool{true, true, true}) || !slices.Equal(xor, []bool{true, true, false}) {
			t.Errorf("bool reductions: and %v or %v xor %v", and, or, xor)
		}
	})
	for r := range np {
		for i, err := range errs[r] {
			if !errors.Is(err, runtime.ErrInvalid) || !strings.Contains(err.Error(), calls[i].want) || trimRank(err) != trimRank(errs[0][i]) {
				t.Errorf("rank %d call %d: %v, want ErrInvalid with %q as on rank 0", r, i, err, calls[i].want)
			}
		}
	}
	if got := runtime.MinLoc.String() + runtime.MaxLoc.String(); got != "MinLocMaxLoc" {
		t.Errorf("op names %q", got)
	}
}

// Processes: the struct movement and an eager mismatch matrix over a few
// types, on one node, on two emulated nodes, and over TCP only.
func typesSuite(c *runtime.Comm) error {
	if err := structMovement(c, 3); err != nil {
		return err
	}
	var few []elemCase
	for _, e := range elemCases {
		switch e.name {
		case "float32", "float64", "uint8", "int64", "runtime_test.Vec3", "runtime_test.Particle", "runtime_test.ParticleTwin", "runtime_test.Pair":
			few = append(few, e)
		}
	}
	if err := matrix(c, few, c.Size() == 2); err != nil {
		return err
	}
	fmt.Printf("rank %d types ok\n", c.Rank())
	return nil
}

func TestStructElementsProcesses(t *testing.T) {
	for _, cfg := range []ranktest.SpawnConfig{{}, {Nodes: 2}, {Nodes: 2, Transports: "self,tcp"}} {
		for _, np := range []int{2, 3} {
			t.Run(fmt.Sprintf("nodes%d-%s/np%d", max(cfg.Nodes, 1), cfg.Transports, np), func(t *testing.T) {
				out := cfg.Spawn(t, np, "types-suite")
				if got := strings.Count(out, "types ok"); got != np {
					t.Fatalf("%d ranks ok, want %d:\n%s", got, np, out)
				}
			})
		}
	}
}
