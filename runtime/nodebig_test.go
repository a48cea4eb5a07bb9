package runtime_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/runtime/ranktest"
)

// Large Bcast and Allreduce on one node go through the large-call segment
// (nodebig.go): chunked, every rank folding its share in rank order, its own
// contribution straight from send unless the call is in place. Checked
// against a naive fold of seeded random inputs, with sizes around the chunk
// size, every root, a user op that does not commute (which catches a fold
// out of rank order), calls in place and with send and recv overlapping
// (which catch a share read after the fold overwrote it) and calls of other
// sizes in between (which catch an area reused too early), at goroutine
// ranks and process ranks.
func TestNodeBig(t *testing.T) {
	for _, np := range []int{1, 2, 3, 5} {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{Transports: []string{"self", "shm"}}}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				if err := nodeBig(c); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
}

func TestNodeBigProcesses(t *testing.T) {
	for _, np := range []int{2, 4} {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			ranktest.Spawn(t, np, "node-big")
		})
	}
}

// nodeBig runs the checks of TestNodeBig on c.
func nodeBig(c *runtime.Comm) error {
	const chunk = 1 << 20 / 8 // float64s per chunk
	counts := []int{33, chunk - 1, chunk, chunk + 3, 3*chunk + 17}
	// Composing affine maps is associative and does not commute: the
	// result depends on the order of the ranks.
	compose, err := runtime.NewOp[affine]("compose", composeInto, false)
	if err != nil {
		return err
	}
	defer compose.Free()
	me, np := c.Rank(), c.Size()
	input := func(r, n, seed int) []float64 {
		rng := rand.New(rand.NewPCG(uint64(r), uint64(seed)))
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(rng.IntN(1000))
		}
		return v
	}
	// Where recv is in send's memory: a buffer of its own, send itself,
	// and overlapping send from 5 elements further on (so that a chunk's
	// result lands on the next chunk's input).
	places := []string{"", " in place", " overlapping"}
	buffers := func(send []float64, place string) (s, r []float64) {
		switch place {
		case " in place":
			return send, send
		case " overlapping":
			b := make([]float64, len(send)+5)
			copy(b, send)
			return b[:len(send)], b[5:]
		}
		return send, make([]float64, len(send))
	}
	for seed, n := range counts {
		for i, op := range []runtime.Op{runtime.Sum, runtime.Max, runtime.Sum} {
			place := places[i]
			send, got := buffers(input(me, n, seed), place)
			if err := runtime.Allreduce(c, send, got, op); err != nil {
				return fmt.Errorf("Allreduce of %d with %v%s: %w", n, op, place, err)
			}
			want := input(0, n, seed)
			for r := 1; r < np; r++ {
				in := input(r, n, seed)
				for i := range want {
					switch op {
					case runtime.Sum:
						want[i] += in[i]
					default:
						want[i] = max(want[i], in[i])
					}
				}
			}
			for i := range want {
				if got[i] != want[i] {
					return fmt.Errorf("Allreduce of %d with %v%s: element %d is %g, want %g", n, op, place, i, got[i], want[i])
				}
			}
		}
		maps := func(r int) []affine {
			v := input(r, 2*n, seed)
			a := make([]affine, n)
			for i := range a {
				a[i] = affine{1 + float64(int(v[2*i])%9), float64(int(v[2*i+1]) % 10)}
			}
			return a
		}
		wantA := maps(0)
		for r := 1; r < np; r++ {
			for i, m := range maps(r) {
				wantA[i] = affine{wantA[i].A * m.A, wantA[i].B*m.A + m.B}
			}
		}
		for _, inPlace := range []bool{false, true} {
			send, gotA := maps(me), make([]affine, n)
			if inPlace {
				gotA = send
			}
			if err := runtime.Allreduce(c, send, gotA, compose); err != nil {
				return fmt.Errorf("Allreduce of %d affine maps (in place %v): %w", n, inPlace, err)
			}
			for i := range wantA {
				if gotA[i] != wantA[i] {
					return fmt.Errorf("Allreduce of %d affine maps (in place %v): element %d is %v, want %v (out of rank order?)", n, inPlace, i, gotA[i], wantA[i])
				}
			}
		}
		root := seed % np
		buf := make([]int32, 2*n+1)
		if me == root {
			for i := range buf {
				buf[i] = int32(i*7 + seed)
			}
		}
		if err := runtime.Bcast(c, buf, root); err != nil {
			return fmt.Errorf("Bcast of %d from %d: %w", len(buf), root, err)
		}
		for i, v := range buf {
			if v != int32(i*7+seed) {
				return fmt.Errorf("Bcast of %d from %d: element %d is %d", len(buf), root, i, v)
			}
		}
	}
	return nil
}

// affine is the map x ↦ A·x + B.
type affine struct{ A, B float64 }

func init() {
	ranktest.Register("node-big", nodeBig)
	ranktest.Register("node-big-movement", func(c *runtime.Comm) error { return nodeBigMovement(c, true) })
}

// Large Allgather and Alltoall on one node go through the large-call segment
// too (nodebig.go), and small ones travel in the arrival (nodecoll.go).
// Checked against the naive model on seeded random input, with sizes below,
// at and above a slot and a chunk, elements of 12 bytes (so that chunks end
// inside elements), calls made twice back to back and a large Bcast in
// between (which catch an area reused too early), at 1..9 goroutine ranks
// and 3 and 4 processes. Allgatherv, with blocks of different sizes in
// any layout, goes the same ways.
func TestNodeBigMovement(t *testing.T) {
	for np := 1; np <= 9; np++ {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			cfg := ranktest.Config{Runtime: runtime.Config{Transports: []string{"self", "shm"}}}
			cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
				if err := nodeBigMovement(c, np <= 3); err != nil {
					t.Fatalf("rank %d: %v", c.Rank(), err)
				}
			})
		})
	}
}

func TestNodeBigMovementProcesses(t *testing.T) {
	for _, np := range []int{3, 4} {
		t.Run(fmt.Sprint("np", np), func(t *testing.T) {
			ranktest.Spawn(t, np, "node-big-movement")
		})
	}
}

// nodeBigMovement runs the checks of TestNodeBigMovement on c; full adds
// sizes just below and at a chunk and of several chunks.
func nodeBigMovement(c *runtime.Comm, full bool) error {
	const chunk = 1 << 20
	n := c.Size()
	q := chunk / n &^ 63 // bytes of a pair's block in one Alltoall chunk
	agBytes := []int{1, 256, 257, chunk + 1}
	agTrip := []int{21, 22, chunk/12 + 1}          // 252 B, 264 B, across a chunk
	aaBytes := []int{1, 256 / n, 256/n + 1, q + 1} // per pair
	aaTrip := []int{1, q/12 + 1}
	if full {
		agBytes = append(agBytes, 255, chunk-1, chunk, 2*chunk+7)
		agTrip = append(agTrip, chunk/12, 3*(chunk/12+1)+1)
		aaBytes = append(aaBytes, q-1, q, 3*q+5)
		aaTrip = append(aaTrip, 1000, 2*q/12+3)
	}
	for i, m := range agBytes {
		if err := movementCase(c, uint64(10+i), m, m, 1, rawBytes); err != nil {
			return err
		}
	}
	for i, m := range agTrip {
		if err := movementCase(c, uint64(30+i), m, 1, 12, tripsOf); err != nil {
			return err
		}
	}
	for i, k := range aaBytes {
		if err := movementCase(c, uint64(50+i), 1, k, 1, rawBytes); err != nil {
			return err
		}
	}
	for i, k := range aaTrip {
		if err := movementCase(c, uint64(70+i), 1, k, 12, tripsOf); err != nil {
			return err
		}
	}
	// Allgatherv: all blocks in a slot, some past it, some past a chunk.
	for i, sizes := range [][]int{{0, 1, 200, 256}, {0, 5, 257, 3000}, {0, 100, chunk + 5}} {
		if err := allgathervCase(c, uint64(90+i), sizes); err != nil {
			return err
		}
	}
	return nil
}

// movementCase checks two Allgathers of m elements per rank back to back,
// a large Bcast, and two Alltoalls of k elements per pair back to back.
// Rank r's Allgather block is input(seed, r, m); block j of its Alltoall
// send is input(seed, n·r+j+n, k).
func movementCase[T comparable](c *runtime.Comm, seed uint64, m, k int, size int, conv func([]byte) []T) error {
	n, me := c.Size(), c.Rank()
	input := func(seed uint64, r, m int) []T {
		var key [32]byte
		key[0], key[1], key[2] = byte(seed), byte(r), byte(r>>8)
		b := make([]byte, m*size)
		rand.NewChaCha8(key).Read(b)
		return conv(b)
	}
	check := func(what string, got, want []T, from int) error {
		for i := range want {
			if got[i] != want[i] {
				return fmt.Errorf("%s (seed %d, m %d, k %d): element %d of rank %d's block is %v, want %v", what, seed, m, k, i, from, got[i], want[i])
			}
		}
		return nil
	}
	var ag [2][]T
	for i := range ag {
		ag[i] = make([]T, n*m)
		if err := runtime.Allgather(c, input(seed+uint64(i)<<8, me, m), ag[i]); err != nil {
			return fmt.Errorf("Allgather of %d: %w", m, err)
		}
	}
	for i := range ag {
		for r := range n {
			if err := check("Allgather", ag[i][r*m:(r+1)*m], input(seed+uint64(i)<<8, r, m), r); err != nil {
				return err
			}
		}
	}
	bc := make([]byte, 300_000+int(seed))
	if me == n-1 {
		for i := range bc {
			bc[i] = byte(i*7) ^ byte(seed)
		}
	}
	if err := runtime.Bcast(c, bc, n-1); err != nil {
		return fmt.Errorf("Bcast between: %w", err)
	}
	for i, v := range bc {
		if v != byte(i*7)^byte(seed) {
			return fmt.Errorf("Bcast between (seed %d): byte %d is %d", seed, i, v)
		}
	}
	var aa [2][]T
	for i := range aa {
		send := make([]T, 0, n*k)
		for j := range n {
			send = append(send, input(seed+uint64(i)<<8, n*me+j+n, k)...)
		}
		aa[i] = make([]T, n*k)
		if err := runtime.Alltoall(c, send, aa[i]); err != nil {
			return fmt.Errorf("Alltoall of %d: %w", k, err)
		}
	}
	for i := range aa {
		for r := range n {
			if err := check("Alltoall", aa[i][r*k:(r+1)*k], input(seed+uint64(i)<<8, n*r+me+n, k), r); err != nil {
				return err
			}
		}
	}
	return nil
}

// evenBlocks are the counts and displacements of n blocks of m in a row.
func evenBlocks(n, m int) (counts, displs []int) {
	for r := range n {
		counts, displs = append(counts, m), append(displs, r*m)
	}
	return counts, displs
}

// allgathervCase checks Allgatherv on c against the naive model, twice
// back to back: rank r sends counts[r] seeded random bytes (counts drawn
// from sizes, zeros included), and the blocks land in recv in reverse rank
// order with a gap after each, so displacements matter.
func allgathervCase(c *runtime.Comm, seed uint64, sizes []int) error {
	n, me := c.Size(), c.Rank()
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	counts := make([]int, n)
	for r := range counts {
		counts[r] = sizes[rng.IntN(len(sizes))]
	}
	displs := make([]int, n)
	at := 0
	for r := n - 1; r >= 0; r-- {
		displs[r] = at
		at += counts[r] + 3
	}
	input := func(i, r int) []byte {
		var key [32]byte
		key[0], key[1], key[2], key[3] = byte(seed), byte(i), byte(r), byte(r>>8)
		b := make([]byte, counts[r])
		rand.NewChaCha8(key).Read(b)
		return b
	}
	for i := range 2 {
		recv := make([]byte, at)
		if err := runtime.Allgatherv(c, input(i, me), recv, counts, displs); err != nil {
			return fmt.Errorf("Allgatherv (seed %d, counts %v): %w", seed, counts, err)
		}
		for r := range n {
			if got, want := recv[displs[r]:displs[r]+counts[r]], input(i, r); string(got) != string(want) {
				return fmt.Errorf("Allgatherv (seed %d, counts %v): rank %d's block differs", seed, counts, r)
			}
		}
		for r := range n {
			if gap := recv[displs[r]+counts[r] : displs[r]+counts[r]+3]; string(gap) != "\x00\x00\x00" {
				return fmt.Errorf("Allgatherv (seed %d, counts %v): the gap after rank %d's block was written", seed, counts, r)
			}
		}
	}
	return nil
}

func rawBytes(b []byte) []byte { return b }

// tripsOf reads b as triples of int32: elements of 12 bytes.
func tripsOf(b []byte) [][3]int32 {
	v := make([][3]int32, len(b)/12)
	for i := range v {
		for j := range 3 {
			v[i][j] = int32(binary.LittleEndian.Uint32(b[12*i+4*j:]))
		}
	}
	return v
}

// A large Allgather or Alltoall with a count that differs on one rank, or a
// recv of the wrong size, is the same ErrInvalid on every rank before any
// data moves (no recv is written), and the communicator goes on working.
func TestNodeBigMismatch(t *testing.T) {
	const m = 200_000
	for _, tc := range []struct {
		name, says string
		call       func(c *runtime.Comm, bad bool, recv []int32) error
	}{
		{"allgather-count", "different counts", func(c *runtime.Comm, bad bool, recv []int32) error {
			k := m
			if bad {
				k--
			}
			return runtime.Allgather(c, make([]int32, k), recv[:c.Size()*k])
		}},
		{"allgather-recv", "recv has", func(c *runtime.Comm, bad bool, recv []int32) error {
			recv = recv[:c.Size()*m]
			if bad {
				recv = recv[:len(recv)-1]
			}
			return runtime.Allgather(c, make([]int32, m), recv)
		}},
		{"allgatherv-counts", "different counts", func(c *runtime.Comm, bad bool, recv []int32) error {
			counts, displs := evenBlocks(c.Size(), m)
			if bad {
				counts[0]-- // the others' counts[0] differs; this rank's own block is as it says
			}
			return runtime.Allgatherv(c, make([]int32, counts[c.Rank()]), recv, counts, displs)
		}},
		{"allgatherv-send", "send has", func(c *runtime.Comm, bad bool, recv []int32) error {
			counts, displs := evenBlocks(c.Size(), m)
			k := m
			if bad {
				k++
			}
			return runtime.Allgatherv(c, make([]int32, k), recv, counts, displs)
		}},
		{"alltoall-count", "different counts", func(c *runtime.Comm, bad bool, recv []int32) error {
			k := c.Size() * m
			if bad {
				k -= c.Size()
			}
			return runtime.Alltoall(c, make([]int32, k), recv[:k])
		}},
	} {
		for _, np := range []int{2, 3, 4} {
			t.Run(fmt.Sprintf("%s/np%d", tc.name, np), func(t *testing.T) {
				causes := make([]string, np)
				cfg := ranktest.Config{Runtime: runtime.Config{Transports: []string{"self", "shm"}}}
				cfg.Run(t, np, func(t testing.TB, c *runtime.Comm) {
					me := c.Rank()
					recv := make([]int32, np*m)
					for i := range recv {
						recv[i] = -1
					}
					err := tc.call(c, me == np-1, recv)
					if !errors.Is(err, runtime.ErrInvalid) {
						t.Fatalf("rank %d: %s: err = %v, want ErrInvalid", me, tc.name, err)
					}
					var oe *runtime.OpError
					if !errors.As(err, &oe) {
						t.Fatalf("rank %d: %v is not an *OpError", me, err)
					}
					causes[me] = oe.Err.Error()
					for i, v := range recv {
						if v != -1 {
							t.Fatalf("rank %d: %s: the failed call wrote element %d of recv", me, tc.name, i)
						}
					}
					send := make([]int32, m)
					for i := range send {
						send[i] = int32(me*m + i)
					}
					if err := runtime.Allgather(c, send, recv); err != nil {
						t.Fatalf("rank %d: Allgather after the error: %v", me, err)
					}
					for i, v := range recv {
						if v != int32(i) {
							t.Fatalf("rank %d: Allgather after the error: element %d is %d", me, i, v)
						}
					}
				})
				for r, cause := range causes {
					if cause != causes[0] || !strings.Contains(cause, tc.says) || !strings.Contains(cause, fmt.Sprint("rank ", np-1)) {
						t.Fatalf("rank %d's error %q: want the same on every rank, naming rank %d and %q (rank 0: %q)", r, cause, np-1, tc.says, causes[0])
					}
				}
			})
		}
	}
}

// hugeElem is an element larger than the large-call segment's chunk.
type hugeElem [1<<17 + 1]float64

// An Allreduce whose element does not fit a chunk goes on with messages
// (it used to loop forever: a chunk held no whole element).
func TestNodeBigHugeElement(t *testing.T) {
	add, err := runtime.NewOp[hugeElem]("add", func(acc, in []hugeElem) {
		for i := range acc {
			for j := range acc[i] {
				acc[i][j] += in[i][j]
			}
		}
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer add.Free()
	cfg := ranktest.Config{Runtime: runtime.Config{Transports: []string{"self", "shm"}}}
	cfg.Run(t, 3, func(t testing.TB, c *runtime.Comm) {
		send := make([]hugeElem, 2)
		for i := range send {
			for j := range send[i] {
				send[i][j] = float64(c.Rank()*7 + i + j%5)
			}
		}
		got := make([]hugeElem, 2)
		if err := runtime.Allreduce(c, send, got, add); err != nil {
			t.Fatalf("rank %d: %v", c.Rank(), err)
		}
		for i := range got {
			for j := range got[i] {
				if want := float64((0+1+2)*7 + 3*(i+j%5)); got[i][j] != want {
					t.Fatalf("rank %d: element %d[%d] = %v, want %v", c.Rank(), i, j, got[i][j], want)
				}
			}
		}
	})
}
