package runtime

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"reflect"
)

// Value forms: any Go value, encoded with encoding/gob, like mpi4py's
// lowercase send/recv/bcast/gather/scatter/allgather/alltoall/reduce with
// pickle.
//
// A value of type T travels as the gob encoding of struct{ V T }: gob
// leaves a nil or zero field out, so nil pointers, maps, slices and
// interfaces travel too (gob refuses them at the top level) and arrive as
// the zero T. The receiver decodes into a fresh T, so a received value
// never shares memory with the sender's or with another rank's; a rank's
// own contribution to a collective goes through the same encoding, so
// every rank's result is alike. gob's rules apply: only exported struct
// fields travel, pointers are followed and arrive as new pointers (a cycle
// cannot be sent), an empty slice or map may arrive as nil, channels and
// functions cannot be sent, and a concrete type sent inside an interface
// must be registered with gob.Register on every rank.
//
// The collectives are made of the typed ones on a communicator: a size
// exchange (Allgather, Alltoall, or a Bcast from the root), then the bytes
// (Allgatherv, Gatherv, Alltoallv, Scatterv, Bcast). A rank whose value
// cannot be encoded still takes part in the size exchange, with the length
// of its reason in place of a size; the lowest such rank then broadcasts
// the reason, and every rank returns the same ErrInvalid naming that rank
// and the type. A received value that cannot be decoded into T is only
// known to the rank that decodes it: that rank returns ErrInvalid naming
// the sender and T, the others return their results (with the same T on
// every rank this does not happen).

// valueBox is what crosses the wire for a value of type T.
type valueBox[T any] struct{ V T }

func typeName[T any]() string { return reflect.TypeFor[T]().String() }

// encodeValue returns the encoding of v, or ErrInvalid naming T.
func encodeValue[T any](v T) ([]byte, error) {
	switch reflect.TypeFor[T]().Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return nil, errInvalid(fmt.Sprintf("a value of type %s cannot be encoded with encoding/gob: it sends no channels, functions or unsafe pointers", typeName[T]()))
	}
	var b bytes.Buffer
	if err := gob.NewEncoder(&b).Encode(valueBox[T]{v}); err != nil {
		return nil, errInvalid(fmt.Sprintf("a value of type %s cannot be encoded with encoding/gob: %v", typeName[T](), err))
	}
	return b.Bytes(), nil
}

// decodeError is a received value that cannot be decoded into the
// receiver's type, which only the decoding rank knows. It wraps
// ErrInvalid.
type decodeError struct{ msg string }

func (e *decodeError) Error() string   { return "invalid argument: " + e.msg }
func (e *decodeError) Is(t error) bool { return t == ErrInvalid }

// decodeValue decodes the value that rank from encoded in b.
func decodeValue[T any](b []byte, from int) (T, error) {
	var box valueBox[T]
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&box); err != nil {
		var zero T
		return zero, &decodeError{fmt.Sprintf("the value from rank %d cannot be decoded into %s: %v", from, typeName[T](), err)}
	}
	return box.V, nil
}

// decodeAll decodes the values of every rank, rank i's at
// buf[displs[i]:][:counts[i]].
func decodeAll[T any](buf []byte, counts, displs []int) ([]T, error) {
	vals := make([]T, len(counts))
	for i := range vals {
		var err error
		if vals[i], err = decodeValue[T](buf[displs[i]:displs[i]+counts[i]], i); err != nil {
			return nil, err
		}
	}
	return vals, nil
}

// valueOpErr returns err, from the calls that make up value call op, as
// an error of op.
func valueOpErr(c *Comm, op string, peer int, err error) error {
	if err == nil {
		return nil
	}
	if oe, ok := err.(*OpError); ok {
		e := *oe
		e.Op, e.Peer = op, peer
		return &e
	}
	return c.opErr(op, peer, err)
}

// failLen is the entry of a rank that cannot take part, for reason e, in
// a size exchange: the negative length of the reason, less one.
func failLen(e *argError) int64 { return -int64(len(e.msg)) - 1 }

// shareFailure returns nil if no entry of lens (one per rank, from a size
// exchange) is negative; else the reason of the lowest such rank, which it
// broadcasts (mine is this rank's reason, or nil), so that every rank
// returns the same error.
func shareFailure(c *Comm, lens []int64, mine *argError) error {
	for i, l := range lens {
		if l >= 0 {
			continue
		}
		text := make([]byte, -l-1)
		if i == c.Rank() {
			copy(text, mine.msg)
		}
		if err := Bcast(c, text, i); err != nil {
			return err
		}
		return &argError{rank: i, msg: string(text)}
	}
	return nil
}

// blockLayout returns the counts and displacements of blocks of sizes.
func blockLayout(sizes []int64) (counts, displs []int, total int) {
	counts, displs = make([]int, len(sizes)), make([]int, len(sizes))
	for i, s := range sizes {
		counts[i], displs[i] = int(s), total
		total += int(s)
	}
	return counts, displs, total
}

// SendValue sends v, encoded with encoding/gob, to rank dest of c with tag
// (≥ 0). Receive it with RecvValue (or SendrecvValue) of the same type.
//
// SendValue is blocking and not collective. v is encoded before anything
// is sent, so the caller may change it once SendValue returns; the call
// returns as Send does with the encoding as its buffer (a small value does
// not wait for its receiver). dest may be ProcNull (nothing is sent or
// encoded). Errors: ErrInvalid naming the type when v cannot be encoded
// (nothing is sent), and those of Send.
func SendValue[T any](c *Comm, v T, dest, tag int) error {
	if dest == ProcNull {
		return nil
	}
	if err := c.checkP2P(dest, tag, false); err != nil {
		return c.opErr("SendValue", dest, err)
	}
	b, err := encodeValue(v)
	if err != nil {
		return c.opErr("SendValue", dest, err)
	}
	return valueOpErr(c, "SendValue", dest, Send(c, b, dest, tag))
}

// RecvValue receives a value sent by SendValue (or SendrecvValue) from rank
// src (or AnySource) with tag (or AnyTag), of any size, and returns it with
// its status: Count 1, Bytes the size of its encoding.
//
// RecvValue is blocking and not collective. It takes the message with a
// matched probe (Mprobe), so receivers on several goroutines never take
// each other's messages, then receives it into a buffer of its size and
// decodes it into a fresh T. From ProcNull it returns the zero T at once.
// Errors: ErrInvalid naming the sender and T when the message cannot be
// decoded into T (the message is consumed), and those of Recv.
func RecvValue[T any](c *Comm, src, tag int) (T, Status, error) {
	var zero T
	if src == ProcNull {
		return zero, nullStatus, nil
	}
	m, st, err := Mprobe[byte](c, src, tag)
	if err != nil {
		return zero, st, valueOpErr(c, "RecvValue", src, err)
	}
	b := make([]byte, st.Bytes)
	if st, err = Mrecv(m, b); err != nil {
		return zero, st, valueOpErr(c, "RecvValue", src, err)
	}
	st.Count = 1
	v, err := decodeValue[T](b, st.Source)
	return v, st, c.opErr("RecvValue", src, err)
}

// SendrecvValue sends v to rank dest with sendtag and receives a value
// from rank src (or AnySource) with recvtag (or AnyTag) at the same time,
// as Sendrecv does for buffers, so a ring of them cannot deadlock. dest
// and src may be ProcNull.
//
// SendrecvValue is blocking and not collective. Errors: ErrInvalid for a
// bad rank or tag, or a v that cannot be encoded (before anything is sent
// or received); then those of SendValue and RecvValue, the send's first.
func SendrecvValue[S, R any](c *Comm, v S, dest, sendtag, src, recvtag int) (R, Status, error) {
	var zero R
	if dest != ProcNull {
		if err := c.checkP2P(dest, sendtag, false); err != nil {
			return zero, Status{}, c.opErr("SendrecvValue", dest, err)
		}
	}
	if src != ProcNull {
		if err := c.checkP2P(src, recvtag, true); err != nil {
			return zero, Status{}, c.opErr("SendrecvValue", src, err)
		}
	}
	var sr *Request
	if dest != ProcNull {
		b, err := encodeValue(v)
		if err == nil {
			sr, err = Isend(c, b, dest, sendtag)
		}
		if err != nil {
			return zero, Status{}, valueOpErr(c, "SendrecvValue", dest, err)
		}
	}
	out, st, rerr := RecvValue[R](c, src, recvtag)
	if _, err := sr.Wait(); err != nil {
		return out, st, valueOpErr(c, "SendrecvValue", dest, err)
	}
	return out, st, valueOpErr(c, "SendrecvValue", src, rerr)
}

// BcastValue returns the value v of rank root on every rank of c
// (mpi4py's bcast); the v of the other ranks is not used.
//
// BcastValue is collective over c and blocking: two Bcasts, of the size
// and of the encoding. Every rank, root included, gets a fresh value
// decoded from root's encoding, which shares no memory with v. Errors: a v
// that root cannot encode is the same ErrInvalid, naming root and the
// type, on every rank; a bad or differing root as Bcast; a decoding
// error only on the rank that meets it (see the top of values.go);
// ErrAborted, ErrClosed.
func BcastValue[T any](c *Comm, v T, root int) (T, error) {
	out, err := bcastValue(c, v, root, nil)
	return out, valueOpErr(c, "BcastValue", root, err)
}

// bcastValue is BcastValue; at root, a non-nil fail is sent, and returned
// by every rank, in place of the value.
func bcastValue[T any](c *Comm, v T, root int, fail error) (T, error) {
	var zero T
	var payload []byte
	hdr := []int64{0}
	if c.Rank() == root {
		if fail == nil {
			payload, fail = encodeValue(v)
		}
		if fail != nil {
			e := newArgError(root, fail)
			payload, hdr[0] = []byte(e.msg), failLen(e)
		} else {
			hdr[0] = int64(len(payload))
		}
	}
	if err := Bcast(c, hdr, root); err != nil {
		return zero, err
	}
	size := hdr[0]
	if size < 0 {
		size = -size - 1
	}
	if c.Rank() != root {
		payload = make([]byte, size)
	}
	if err := Bcast(c, payload, root); err != nil {
		return zero, err
	}
	if hdr[0] < 0 {
		return zero, &argError{rank: root, msg: string(payload)}
	}
	return decodeValue[T](payload, root)
}

// GatherValue returns at rank root the value v of every rank of c, in rank
// order (mpi4py's gather), and nil at the other ranks.
//
// GatherValue is collective over c and blocking: an Allgather of every
// rank's size and root, then a Gatherv of the encodings. Every value is
// decoded afresh, root's own too. Errors: a root out of range or differing
// between ranks, and a value that some rank cannot encode, are the same
// ErrInvalid on every rank, naming the lowest such rank (and the type);
// a decoding error only at root; ErrAborted, ErrClosed.
func GatherValue[T any](c *Comm, v T, root int) ([]T, error) {
	vals, err := gatherValues(c, v, root, false, nil)
	return vals, valueOpErr(c, "GatherValue", root, err)
}

// AllgatherValue returns on every rank the value v of every rank of c, in
// rank order (mpi4py's allgather).
//
// AllgatherValue is collective over c and blocking: an Allgather of the
// sizes, then an Allgatherv of the encodings, which every rank decodes
// (its own too). Errors: a value that some rank cannot encode is the same
// ErrInvalid on every rank, naming the lowest such rank and the type; a
// decoding error only on the rank that meets it; ErrAborted, ErrClosed.
func AllgatherValue[T any](c *Comm, v T) ([]T, error) {
	vals, err := gatherValues(c, v, -1, true, nil)
	return vals, valueOpErr(c, "AllgatherValue", NoPeer, err)
}

// gatherValues is GatherValue, or with all AllgatherValue (root unused). A
// non-nil fail is this rank's reason not to send v: it fails the call on
// every rank as an encoding error would.
func gatherValues[T any](c *Comm, v T, root int, all bool, fail error) ([]T, error) {
	n, me := c.Size(), c.Rank()
	var b []byte
	if fail == nil {
		b, fail = encodeValue(v)
	}
	var mine *argError
	rec := []int64{int64(len(b)), int64(root)}
	if fail != nil {
		mine = newArgError(me, fail)
		rec[0] = failLen(mine)
	}
	if all {
		rec = rec[:1]
	}
	recs := make([]int64, len(rec)*n)
	if err := Allgather(c, rec, recs); err != nil {
		return nil, err
	}
	sizes := make([]int64, n)
	for i := range n {
		sizes[i] = recs[i*len(rec)]
	}
	if !all {
		for i := range n {
			switch r := recs[2*i+1]; {
			case r < 0 || r >= int64(n):
				return nil, &argError{rank: i, msg: fmt.Sprintf("root %d out of range [0,%d)", r, n)}
			case r != recs[1]:
				return nil, &argError{rank: i, msg: fmt.Sprintf("the ranks passed different roots: rank 0 passed %d, rank %d passed %d", recs[1], i, r)}
			}
		}
	}
	if err := shareFailure(c, sizes, mine); err != nil {
		return nil, err
	}
	counts, displs, total := blockLayout(sizes)
	if all {
		buf := make([]byte, total)
		if err := Allgatherv(c, b, buf, counts, displs); err != nil {
			return nil, err
		}
		return decodeAll[T](buf, counts, displs)
	}
	var buf []byte
	if me == root {
		buf = make([]byte, total)
	}
	if err := Gatherv(c, b, buf, counts, displs, root); err != nil || me != root {
		return nil, err
	}
	return decodeAll[T](buf, counts, displs)
}

// ScatterValue returns on rank i the value vs[i] of rank root (mpi4py's
// scatter); vs is used only at root, where it must have Size() values.
//
// ScatterValue is collective over c and blocking: a Bcast of every rank's
// size from root, then a Scatterv of the encodings. Every rank, root
// included, gets a fresh value decoded from root's encoding. Errors: a vs
// of the wrong length at root, or a value root cannot encode, is the same
// ErrInvalid on every rank, naming root (and the type); a bad or differing
// root as Bcast; a decoding error only on the rank that meets it;
// ErrAborted, ErrClosed.
func ScatterValue[T any](c *Comm, vs []T, root int) (T, error) {
	v, err := scatterValue(c, vs, root)
	return v, valueOpErr(c, "ScatterValue", root, err)
}

func scatterValue[T any](c *Comm, vs []T, root int) (T, error) {
	var zero T
	n, me := c.Size(), c.Rank()
	hdr := make([]int64, n+1) // a failure's length, then every rank's size
	var send []byte
	var mine *argError
	if me == root {
		var err error
		if len(vs) != n {
			err = errInvalid(fmt.Sprintf("vs has %d values, want Size() = %d", len(vs), n))
		}
		for i := 0; err == nil && i < n; i++ {
			var b []byte
			if b, err = encodeValue(vs[i]); err == nil {
				send = append(send, b...)
				hdr[1+i] = int64(len(b))
			}
		}
		if err != nil {
			mine = newArgError(root, err)
			hdr[0] = failLen(mine)
		}
	}
	if err := Bcast(c, hdr, root); err != nil {
		return zero, err
	}
	fails := make([]int64, n)
	fails[root] = hdr[0]
	if err := shareFailure(c, fails, mine); err != nil {
		return zero, err
	}
	counts, displs, _ := blockLayout(hdr[1:])
	recv := make([]byte, counts[me])
	if err := Scatterv(c, send, counts, displs, recv, root); err != nil {
		return zero, err
	}
	return decodeValue[T](recv, root)
}

// AlltoallValue sends vs[j] of every rank to rank j and returns on every
// rank the values sent to it, in rank order (mpi4py's alltoall): out[i] is
// vs[Rank()] of rank i. vs must have Size() values.
//
// AlltoallValue is collective over c and blocking: an Alltoall of the
// sizes, then an Alltoallv of the encodings. Every value is decoded
// afresh, the rank's own too. Errors: a vs of the wrong length, or a value
// that cannot be encoded, on some rank is the same ErrInvalid on every
// rank, naming the lowest such rank (and the type); a decoding error only
// on the rank that meets it; ErrAborted, ErrClosed.
func AlltoallValue[T any](c *Comm, vs []T) ([]T, error) {
	vals, err := alltoallValue(c, vs)
	return vals, valueOpErr(c, "AlltoallValue", NoPeer, err)
}

func alltoallValue[T any](c *Comm, vs []T) ([]T, error) {
	n := c.Size()
	sizes := make([]int64, n)
	var send []byte
	var err error
	if len(vs) != n {
		err = errInvalid(fmt.Sprintf("vs has %d values, want Size() = %d", len(vs), n))
	}
	for i := 0; err == nil && i < n; i++ {
		var b []byte
		if b, err = encodeValue(vs[i]); err == nil {
			send = append(send, b...)
			sizes[i] = int64(len(b))
		}
	}
	var mine *argError
	if err != nil {
		mine = newArgError(c.Rank(), err)
		for i := range sizes {
			sizes[i] = failLen(mine)
		}
	}
	got := make([]int64, n)
	if err := Alltoall(c, sizes, got); err != nil {
		return nil, err
	}
	if err := shareFailure(c, got, mine); err != nil {
		return nil, err
	}
	scounts, sdispls, _ := blockLayout(sizes)
	rcounts, rdispls, total := blockLayout(got)
	recv := make([]byte, total)
	if err := Alltoallv(c, send, scounts, sdispls, recv, rcounts, rdispls); err != nil {
		return nil, err
	}
	return decodeAll[T](recv, rcounts, rdispls)
}

// ReduceValue combines the value v of every rank with f and returns the
// result at rank root (mpi4py's reduce with a Python function), the zero T
// elsewhere. f is applied at root in rank order, left to right:
// f(…f(f(v₀, v₁), v₂)…, vₙ₋₁), on values decoded afresh (root's own too),
// so f need be neither commutative nor associative, and may change and
// return its first argument. f is only called at root, but every rank
// passes one.
//
// ReduceValue is collective over c and blocking: GatherValue, then the
// fold at root (so root holds every rank's value at once). Errors: a nil
// f, a root out of range or differing, or a value that cannot be encoded,
// on some rank, is the same ErrInvalid on every rank, naming the lowest
// such rank; a decoding error only at root; ErrAborted, ErrClosed.
func ReduceValue[T any](c *Comm, v T, f func(a, b T) T, root int) (T, error) {
	var zero T
	var fail error
	if f == nil {
		fail = errInvalid("f is nil")
	}
	vals, err := gatherValues(c, v, root, false, fail)
	if err != nil || c.Rank() != root {
		return zero, valueOpErr(c, "ReduceValue", root, err)
	}
	return fold(vals, f), nil
}

// AllreduceValue is ReduceValue with the result on every rank (mpi4py's
// allreduce with a Python function): the fold runs at rank 0 and its
// result is broadcast, so every rank gets the same value, decoded afresh.
//
// AllreduceValue is collective over c and blocking: ReduceValue to rank
// 0, then BcastValue. Errors: as ReduceValue, and a result of f that
// cannot be encoded, or a value rank 0 cannot decode, is the same
// ErrInvalid on every rank; a decoding error of the result only on the
// rank that meets it; ErrAborted, ErrClosed.
func AllreduceValue[T any](c *Comm, v T, f func(a, b T) T) (T, error) {
	var zero T
	var fail error
	if f == nil {
		fail = errInvalid("f is nil")
	}
	vals, err := gatherValues(c, v, 0, false, fail)
	var acc T
	if err != nil {
		var de *decodeError
		if c.Rank() != 0 || !errors.As(err, &de) {
			// Known to every rank.
			return zero, valueOpErr(c, "AllreduceValue", NoPeer, err)
		}
		// Only rank 0 knows: it sends the error in place of the result.
	} else if c.Rank() == 0 {
		acc = fold(vals, f)
	}
	out, err := bcastValue(c, acc, 0, err)
	return out, valueOpErr(c, "AllreduceValue", NoPeer, err)
}

func fold[T any](vals []T, f func(a, b T) T) T {
	acc := vals[0]
	for _, v := range vals[1:] {
		acc = f(acc, v)
	}
	return acc
}
