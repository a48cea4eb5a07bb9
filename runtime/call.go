package runtime

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The identity of a collective call.
//
// Collective calls on a communicator must be made in the same order, with
// matching arguments, by every rank. Each call therefore carries what every
// rank must agree on: its kind, its reduction op, its root and the count of
// elements every rank passes. On a one-node communicator the ranks compare
// their identities in the shared segment when they enter the call
// (nodecoll.go); on the message path every collective frame carries the call
// word (wire.Header.Call) and a receive only accepts a frame whose word is
// its own (match.go), and a collective that waits long for a peer asks it
// which call it made (verify.go).

// collKind names a collective in a call identity.
type collKind uint8

const (
	callBarrier collKind = iota + 1
	callBcast
	callReduce
	callAllreduce
	callScan
	callGather
	callGatherv
	callAllgather
	callScatter
	callAlltoall
	callSplit // Dup, Split, SplitShared
	callClose // the barrier of the world's Close
	callSetup // the runtime's own collective steps (shared segment, node structure)
	callAllocShared
	callExscan
	callAllgatherv
	callScatterv
	callAlltoallv
	callReduceScatter
	callCart
	callCreate
	callNeighborAllgather
	callNeighborAllgatherv
	callNeighborAlltoall
	callNeighborAlltoallv
	callNonblocking // the nonblocking form of another kind (in the word only; see word)
	numKinds
)

var kindNames = [...]string{
	callBarrier: "Barrier", callBcast: "Bcast", callReduce: "Reduce", callAllreduce: "Allreduce",
	callScan: "Scan", callGather: "Gather", callGatherv: "Gatherv", callAllgather: "Allgather",
	callScatter: "Scatter", callAlltoall: "Alltoall", callSplit: "Split", callClose: "Close",
	callSetup: "runtime setup", callAllocShared: "AllocShared", callExscan: "Exscan",
	callAllgatherv: "Allgatherv", callScatterv: "Scatterv", callAlltoallv: "Alltoallv",
	callReduceScatter: "ReduceScatter", callCart: "Cart", callCreate: "Create",
	callNeighborAllgather: "NeighborAllgather", callNeighborAllgatherv: "NeighborAllgatherv",
	callNeighborAlltoall: "NeighborAlltoall", callNeighborAlltoallv: "NeighborAlltoallv", callNonblocking: "nonblocking collective",
}

func (k collKind) String() string {
	if k > 0 && k < numKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("collective(%d)", uint8(k))
}

// callID is what every rank of a collective call must agree on.
type callID struct {
	kind  collKind
	op    Op   // reductions; 0 otherwise
	root  int  // rooted calls; -1 otherwise
	count int  // elements every rank passes, where they must agree; -1 otherwise
	esize int  // element size in bytes, where counts must agree; 0 otherwise
	nb    bool // the nonblocking form of kind (Ibarrier, Ibcast, ...; nbc.go)
}

func plainCall(kind collKind) callID { return callID{kind: kind, root: -1, count: -1} }

func rootedCall(kind collKind, root, count, esize int) callID {
	return callID{kind: kind, root: root, count: count, esize: esize}
}

func countedCall(kind collKind, op Op, count, esize int) callID {
	return callID{kind: kind, op: op, root: -1, count: count, esize: esize}
}

// The call word (wire.Header.Call) packs a callID into 32 bits: the kind in
// bits 0–4, the op in bits 5–9, and in bits 10–31 root+1 for a rooted call,
// else count+1 where counts must agree, else 0 — modulo 2^22, which is exact
// for roots and counts below about four million. A user op's field is not
// its handle, which is local to a process, but a code from what the ranks
// agree on (Op.wordCode). A nonblocking call has callNonblocking in bits
// 0–4 and the kind it is the nonblocking form of in bits 10–14, which
// leaves bits 15–31 for root+1 or count+1 (modulo 2^17).
const (
	wordKindBits   = 5
	wordOpBits     = 5
	wordKindMask   = 1<<wordKindBits - 1
	wordArgShift   = wordKindBits + wordOpBits
	wordArgMask    = 1<<(32-wordArgShift) - 1
	wordNBArgShift = wordArgShift + wordKindBits
	wordNBArgMask  = 1<<(32-wordNBArgShift) - 1
)

func (id callID) word() uint32 {
	w := uint32(id.kind) | id.op.wordCode()<<wordKindBits
	var arg int
	switch {
	case id.kind.rooted():
		arg = id.root + 1
	case id.count >= 0:
		arg = id.count + 1
	}
	if id.nb {
		return uint32(callNonblocking) | id.op.wordCode()<<wordKindBits | uint32(id.kind)<<wordArgShift |
			uint32(arg&wordNBArgMask)<<wordNBArgShift
	}
	return w | uint32(arg&wordArgMask)<<wordArgShift
}

// decodeWord unpacks a call word as far as it goes: no element size, and
// no count for a rooted call.
func decodeWord(w uint32) callID {
	id := callID{
		kind:  collKind(w & wordKindMask),
		op:    Op(w >> wordKindBits & (1<<wordOpBits - 1)),
		root:  -1,
		count: -1,
	}
	arg := int(w >> wordArgShift)
	if id.kind == callNonblocking {
		id.kind, id.nb = collKind(arg&wordKindMask), true
		arg >>= wordKindBits
	}
	switch {
	case id.kind.rooted():
		id.root = arg - 1
	case arg > 0:
		id.count = arg - 1
	}
	return id
}

// wordKind is the part of a call word that names the kind of call: the
// kind, and for a nonblocking call also the kind it is the form of.
func wordKind(w uint32) uint32 {
	if w&wordKindMask == uint32(callNonblocking) {
		return w & (wordKindMask | wordKindMask<<wordArgShift)
	}
	return w & wordKindMask
}

// sameKind reports whether two call words name the same kind of call.
func sameKind(a, b uint32) bool { return wordKind(a) == wordKind(b) }

// rooted reports whether calls of kind k have a root.
func (k collKind) rooted() bool {
	switch k {
	case callBcast, callReduce, callGather, callGatherv, callScatter:
		return true
	}
	return false
}

// informing reports whether calls of kind k pass a rank's argument error
// on to every rank (poison, coll.go). Their words may differ in op and
// count between ranks when a rank's own arguments are wrong, so only their
// kinds are compared when a rank checks a stalled call (verify.go); a real
// difference shows when their frames meet.
func (k collKind) informing() bool {
	switch k {
	case callAllreduce, callAllgather, callAlltoall, callSplit, callAllocShared:
		return true
	}
	return false
}

// wordsAgree reports whether two ranks that made calls mine and theirs at
// one point of a stalled communicator made the same call, as far as a check
// can tell (see informing).
func wordsAgree(mine, theirs uint32) bool {
	if decodeWord(mine).kind.informing() {
		// Their ops may differ where a rank's own op is wrong, but not in
		// whether they combine in rank order: that picks the algorithm
		// (recursive doubling or a ring), and ranks on different ones
		// wait for each other for good.
		return sameKind(mine, theirs) && wordOrdered(mine) == wordOrdered(theirs)
	}
	return mine == theirs
}

// wordOrdered reports whether the op of a call word is a user op that does
// not commute (Op.wordCode).
func wordOrdered(w uint32) bool {
	op := decodeWord(w).op
	return op >= userWordCode && op < userWordCode+8 && op&4 == 0
}

// wordString describes the call a word encodes, as far as it can tell.
func wordString(w uint32) string { return decodeWord(w).String() }

// name is the public name of the call: Bcast, or Ibcast for its
// nonblocking form.
func (id callID) name() string {
	s := id.kind.String()
	if id.nb && id.kind > 0 && id.kind < numKinds {
		s = "I" + strings.ToLower(s[:1]) + s[1:]
	}
	return s
}

func (id callID) String() string {
	var parts []string
	switch {
	case id.op >= userWordCode && id.op < userWordCode+8:
		parts = append(parts, fmt.Sprintf("a user op (code %d)", id.op))
	case id.op != 0:
		parts = append(parts, id.op.String())
	}
	if id.root >= 0 {
		parts = append(parts, fmt.Sprintf("root %d", id.root))
	}
	switch {
	case id.count >= 0 && id.kind == callAllgatherv:
		parts = append(parts, fmt.Sprintf("counts digest %x", id.count)) // countsDigest
	case id.count >= 0:
		parts = append(parts, fmt.Sprintf("count %d", id.count))
	}
	if id.esize > 0 {
		parts = append(parts, fmt.Sprintf("%d-byte elements", id.esize))
	}
	if len(parts) == 0 {
		return id.name()
	}
	return id.name() + "(" + strings.Join(parts, ", ") + ")"
}

// differs says how two ranks' identities of one call differ, "" if they
// agree.
func differs(a callID, ra int, b callID, rb int) string {
	if a == b {
		return ""
	}
	what := "arguments"
	switch {
	case a.kind != b.kind || a.nb != b.nb:
		what = "calls"
	case a.op != b.op:
		what = "ops"
	case a.root != b.root:
		what = "roots"
	case a.count != b.count:
		what = "counts"
	case a.esize != b.esize:
		what = "element sizes"
	}
	return fmt.Sprintf("the ranks passed different %s: rank %d called %v, rank %d called %v", what, ra, a, rb, b)
}

// mismatchError is a collective whose ranks did not make the same call. It
// wraps ErrInvalid.
type mismatchError struct {
	comm string
	seq  uint32 // the call's sequence number on comm
	msg  string
}

func (e *mismatchError) Error() string {
	return fmt.Sprintf("invalid argument: collective call %d on %s: %s", e.seq, e.comm, e.msg)
}
func (e *mismatchError) Is(t error) bool { return t == ErrInvalid }

// wordMismatch is the error of ranks whose calls at sequence number seq
// of comm have the words mine (this rank's) and theirs (rank src's).
func wordMismatch(comm string, rank int, seq uint32, mine uint32, src int, theirs uint32) error {
	msg := differs(decodeWord(mine), rank, decodeWord(theirs), src)
	if msg == "" {
		msg = fmt.Sprintf("rank %d and rank %d made different calls", rank, src)
	}
	return &mismatchError{comm: comm, seq: seq, msg: msg}
}

// argError is an argument error of one rank in a collective call, the same
// on every rank that learns of it. It wraps ErrInvalid.
type argError struct {
	rank int // the rank, in the call's communicator, that saw it
	msg  string
}

func (e *argError) Error() string {
	return fmt.Sprintf("invalid argument: rank %d: %s", e.rank, e.msg)
}
func (e *argError) Is(t error) bool { return t == ErrInvalid }

// first returns whichever of a and b comes from the lower rank, so that
// ranks merging the same set of errors in any order agree.
func (e *argError) first(b *argError) *argError {
	if e == nil || (b != nil && b.rank < e.rank) {
		return b
	}
	return e
}

// newArgError makes this rank's argument error err (an errInvalid) into the
// error every rank will report.
func newArgError(rank int, err error) *argError {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "invalid argument: ")
	return &argError{rank: rank, msg: msg}
}

// The payload of a poison frame (wire.FlagPoison): the rank and the text.
func (e *argError) encode() []byte {
	b := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+len(e.msg)), uint32(e.rank))
	return append(b, e.msg...)
}

func decodeArgError(b []byte) *argError {
	if len(b) < 4 {
		return &argError{rank: -1, msg: "malformed poison frame"}
	}
	return &argError{rank: int(int32(binary.LittleEndian.Uint32(b))), msg: string(b[4:])}
}
