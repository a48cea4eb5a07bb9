package runtime

import "errors"

// Node-aware (hierarchical) collectives. On a communicator that spans more
// than one node and has some node with more than one rank, Barrier, Bcast,
// Allreduce and Allgather work in three steps: inside each node over the node
// communicator (the ranks of c on one node, which talk over shared memory
// when that transport serves same-node peers), between nodes over the
// leaders communicator (the lowest rank of c on each node), and inside each
// node again. Only leaders send messages between nodes. Inside a node, all
// three go through the node communicator's shared segment (nodecoll.go,
// nodebig.go) where it has one; Allreduce's node steps carry the argument
// errors in the arrivals (see hierAllreduce).
//
// The decision depends only on the world's node table and c's group, which
// every rank has, so every rank of c takes the same path. The two
// sub-communicators are built on the first hierarchical collective, by a
// collective step every rank of c takes at the same point of its call
// sequence, and cached on c; Close of c closes them.

// hier is the node structure of a communicator and its cached
// sub-communicators.
type hier struct {
	nodeOf  []int // node index of each rank of c, numbered by first appearance
	localOf []int // rank in its node communicator of each rank of c
	node    *Comm // the ranks of c on this rank's node, ordered by rank in c
	// leaders holds the lowest rank of c on each node, ordered by rank in
	// c, so node index i is rank i of leaders. It is nil on other ranks.
	leaders *Comm
}

const (
	planUnknown uint8 = iota
	planFlat
	planHier
)

// hierarchical reports whether c's Barrier, Bcast and Allreduce go
// node-aware: c spans more than one node and some node holds more than one
// of its ranks. Every rank of c gets the same answer.
func (c *Comm) hierarchical() bool {
	if c.hierPlan == planUnknown {
		c.hierPlan = planFlat
		nodes := make(map[string]int)
		for _, wr := range c.group {
			nodes[c.w.nodes[wr]]++
		}
		if len(nodes) > 1 && len(nodes) < c.size {
			c.hierPlan = planHier
		}
	}
	return c.hierPlan == planHier
}

// nodesConsecutive reports whether the ranks of c on each node are
// consecutive in c, so that the node-aware Allreduce combines in rank
// order. Every rank of c gets the same answer.
func (c *Comm) nodesConsecutive() bool {
	seen := make(map[string]bool)
	for q, wr := range c.group {
		id := c.w.nodes[wr]
		if q > 0 && id == c.w.nodes[c.group[q-1]] {
			continue
		}
		if seen[id] {
			return false
		}
		seen[id] = true
	}
	return true
}

// hierarchy returns c's node structure, building its sub-communicators on
// first use. It is collective over c: every rank of c calls it at the same
// point (the first hierarchical collective), so the allgather it makes on
// c matches everywhere.
func (c *Comm) hierarchy() (*hier, error) {
	if c.hier != nil {
		return c.hier, nil
	}
	if err := c.usable(); err != nil {
		return nil, err
	}
	h := &hier{nodeOf: make([]int, c.size), localOf: make([]int, c.size)}
	index := make(map[string]int)
	var count []int // ranks of c per node index
	var leaderOf []int
	for q, wr := range c.group {
		id := c.w.nodes[wr]
		i, ok := index[id]
		if !ok {
			i = len(count)
			index[id] = i
			count = append(count, 0)
			leaderOf = append(leaderOf, q)
		}
		h.nodeOf[q], h.localOf[q] = i, count[i]
		count[i]++
	}
	// Agree on two fresh contexts, as split does, with one allgather.
	mine := []int64{int64(c.w.peekCtx())}
	all := make([]int64, c.size)
	if err := c.allgatherInts(callSetup, "Setup", mine, all, nil); err != nil {
		return nil, err
	}
	var next int64
	for _, v := range all {
		next = max(next, v)
	}
	nodeCtx := c.w.allocCtx(uint32(next))
	leadCtx := c.w.allocCtx(nodeCtx + 2)

	me := h.nodeOf[c.rank]
	node := c.w.newComm(c.name+".node", nodeCtx, h.localOf[c.rank], count[me])
	node.group = node.group[:0]
	for q, wr := range c.group {
		if h.nodeOf[q] == me {
			node.group = append(node.group, wr)
		}
	}
	h.node = node
	if h.localOf[c.rank] == 0 {
		lead := c.w.newComm(c.name+".leaders", leadCtx, me, len(leaderOf))
		for i, q := range leaderOf {
			lead.group[i] = c.group[q]
		}
		h.leaders = lead
	}
	// Collectives on sub-communicators never take the hierarchical path
	// again: a node communicator is on one node, and the leaders
	// communicator has one rank per node.
	node.hierPlan = planFlat
	if h.leaders != nil {
		h.leaders.hierPlan = planFlat
	}
	c.hier = h
	return h, nil
}

// hierErr wraps the error of node-aware call op on c so that it names op,
// c and this rank's rank in c, as the flat call's errors do, even when it
// comes from a request on a sub-communicator or from building them.
func (c *Comm) hierErr(op string, peer int, err error) error {
	if err == nil {
		return nil
	}
	var oe *OpError
	if errors.As(err, &oe) {
		err = oe.Err
	}
	return c.opErr(op, peer, err)
}

// closeHier closes c's cached sub-communicators, if any.
func (c *Comm) closeHier() {
	if c == nil || c.hier == nil {
		return
	}
	_ = c.hier.node.Close()
	_ = c.hier.leaders.Close()
}

// hierBarrier is Barrier on a hierarchical c: the ranks of each node
// report to their leader, the leaders run a barrier among themselves, and
// each leader releases its node.
func hierBarrier(c *Comm) (err error) {
	defer func() { err = c.hierErr("Barrier", NoPeer, err) }()
	var k coll
	if err := c.begin(&k, "Barrier", plainCall(callBarrier)); err != nil {
		return err
	}
	h, err := c.hierarchy()
	if err != nil {
		return err
	}
	var kn coll
	if err := h.node.begin(&kn, "Barrier", k.id); err != nil {
		return err
	}
	nc := h.node.nodeColl() // the same on every rank of the node
	if nc != nil {
		err = nodeStep(&kn, nc)
	} else {
		err = fanIn(&kn)
	}
	if err != nil {
		return err
	}
	if h.leaders != nil {
		if err := barrier(h.leaders, "Barrier", callBarrier); err != nil {
			return err
		}
	}
	if err := h.node.begin(&kn, "Barrier", k.id); err != nil {
		return err
	}
	if nc != nil {
		// The leader arrives after the leaders' barrier: this arrival
		// releases the node.
		return nodeStep(&kn, nc)
	}
	return kn.bcast(nil, 0)
}

// nodeStep is one arrival of every rank of the node in its segment, for a
// step of a node-aware call. The ranks of the node may find that they
// disagree (other calls, counts or roots), but the other nodes cannot
// learn of it, so a disagreement aborts the world.
func nodeStep(kn *coll, nc *nodeColl) error {
	_, err := nc.arrive(kn, nil, nil)
	return nodeAbort(kn, err)
}

// nodeAbort turns an error of a node step that has not failed the world
// into an abort of the world.
func nodeAbort(kn *coll, err error) error {
	if err == nil || kn.c.w.err() != nil {
		return err
	}
	return kn.abort(err)
}

// fanIn is a binomial gather of empty messages to rank 0: it returns at
// rank 0 when every rank has called it.
func fanIn(k *coll) error {
	n, r := k.c.size, k.c.rank
	for mask := 1; mask < n; mask <<= 1 {
		if r&mask != 0 {
			return k.send(r-mask, nil)
		}
		if r|mask < n {
			if err := k.recv(r|mask, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// hierBcast is Bcast on a hierarchical c, for call k (begun, root checked):
// the root's node gets b from the root, the leaders pass it from the root's
// leader to the other nodes, and each other leader passes it on inside its
// node.
func hierBcast(k *coll, b []byte, root int) (err error) {
	c := k.c
	defer func() { err = c.hierErr("Bcast", root, err) }()
	h, err := c.hierarchy()
	if err != nil {
		return err
	}
	rootNode := h.nodeOf[root]
	if h.nodeOf[c.rank] == rootNode {
		if err := nodeBcast(h, k, b, h.localOf[root]); err != nil {
			return err
		}
	}
	if h.leaders != nil {
		var kl coll
		if err := h.leaders.begin(&kl, "Bcast", k.id); err != nil {
			return err
		}
		kl.strict = true
		if err := kl.end(kl.bcast(b, rootNode)); err != nil {
			return err
		}
	}
	if h.nodeOf[c.rank] != rootNode {
		return nodeBcast(h, k, b, 0)
	}
	return nil
}

// nodeBcast is the Bcast of b from node rank root inside this rank's node,
// for call k on c. Its frames carry k's identity, so ranks that passed c
// different roots cannot meet here unnoticed.
func nodeBcast(h *hier, k *coll, b []byte, root int) error {
	var kn coll
	if err := h.node.begin(&kn, "Bcast", k.id); err != nil {
		return err
	}
	kn.strict = true
	// No rank gets here with an argument error (Bcast aborts on one before
	// the node-aware path), so every rank of the node takes the segment
	// when there is one.
	if nc := h.node.nodeColl(); nc != nil {
		if done, err := bcastNode(&kn, nc, b, root, nil); done || err != nil {
			return nodeAbort(&kn, err)
		}
	}
	return kn.end(kn.bcast(b, root))
}

// hierAllreduce is Allreduce on a hierarchical c for call k, with acc
// holding this rank's input: each node reduces, the leaders allreduce, and
// each leader broadcasts the result in its node. Every rank gets the
// leaders' bytes, so results are bit-identical. An argument error (k.err)
// travels the same way, so every rank ends with the same one. For an
// ordered op (callers make sure that c.nodesConsecutive()) both steps
// combine in rank order, and so does the whole.
//
// Where the node communicator has a shared segment (nodecoll.go), both node
// steps go through it: an Allreduce of the node (every rank of the node
// gets the node's result; the large-call segment past a slot) and a Bcast
// from the leader. The argument error travels in the arrivals, keeping the
// rank of c it names: in the first step every rank brings its own, in the
// second the leader brings the one the leaders agreed on.
func hierAllreduce[T Elem](k *coll, acc []T, f func(dst, src []T), ordered bool) (err error) {
	c := k.c
	defer func() { err = c.hierErr("Allreduce", NoPeer, err) }()
	h, err := c.hierarchy()
	if err != nil {
		return err
	}
	var kn coll
	nc, err := nodeGather(h, k, &kn, "Allreduce",
		func(nc *nodeColl, local error) (bool, error) { return allreduceNode(&kn, nc, acc, acc, f, local) },
		func() error { return reduce(&kn, acc, acc, f, 0, ordered) })
	if err != nil {
		return err
	}
	if l := h.leaders; l != nil {
		var kl coll
		if err := l.begin(&kl, "Allreduce", k.id); err != nil {
			return err
		}
		kl.err = k.err
		if !ordered && len(acc)*sizeOf[T]() >= ringThreshold && len(acc) >= l.size {
			err = ringAllreduce(&kl, acc, f)
		} else {
			err = rdAllreduce(&kl, acc, f, ordered)
		}
		if err != nil {
			return err
		}
		k.err = kl.err
	}
	return nodeRelease(h, k, nc, "Allreduce", asBytes(acc))
}

// hierAllgather is Allgather on a hierarchical c whose nodes hold
// consecutive ranks (c.nodesConsecutive), for call k (begun; k.err holds
// this rank's argument error, and recv is then scratch of the right size):
// each node gathers its ranks' blocks, which make one contiguous piece of
// recv, the leaders pass the pieces round a ring, and each leader
// broadcasts the whole of recv in its node. Only leaders send messages
// between nodes: one piece per step instead of one block. The node steps
// go through the node's segment where it has one, and an argument error
// travels as in hierAllreduce, so every rank ends with the same one.
func hierAllgather(k *coll, send, recv []byte) (err error) {
	c := k.c
	defer func() { err = c.hierErr("Allgather", NoPeer, err) }()
	h, err := c.hierarchy()
	if err != nil {
		return err
	}
	m := len(send)
	first := c.rank - h.localOf[c.rank] // the node's ranks are consecutive
	piece := recv[first*m : (first+h.node.size)*m]
	var kn coll
	nc, err := nodeGather(h, k, &kn, "Allgather",
		func(nc *nodeColl, local error) (bool, error) { return allgatherNode(&kn, nc, send, piece, local) },
		func() error { return allgather(&kn, send, piece) })
	if err != nil {
		return err
	}
	if l := h.leaders; l != nil {
		var kl coll
		if err := l.begin(&kl, "Allgather", k.id); err != nil {
			return err
		}
		kl.err = k.err
		// Node i's piece starts at its leader's rank in c.
		lead := make([]int, l.size+1)
		for q := range c.size {
			if h.localOf[q] == 0 {
				lead[h.nodeOf[q]] = q
			}
		}
		lead[l.size] = c.size
		err := ringBlocks(&kl, func(i int) []byte { return recv[lead[i]*m : lead[i+1]*m] })
		if err != nil {
			return err
		}
		k.err = kl.err
	}
	return nodeRelease(h, k, nc, "Allgather", recv)
}

// nodeGather is the first step of node-aware call k (op), as call kn on
// the node communicator, which seg and msgs use: every rank of the node
// brings its part, through the node's segment where it has one (seg,
// reporting done == false to go on with messages), else by messages
// (msgs). This rank's argument error (k.err) rides along, and the one the
// node agreed on ends in k.err. It returns the node's segment, nil without
// one, the same on every rank of the node.
func nodeGather(h *hier, k, kn *coll, op string, seg func(nc *nodeColl, local error) (bool, error), msgs func() error) (*nodeColl, error) {
	if err := h.node.begin(kn, op, k.id); err != nil {
		return nil, err
	}
	nc := h.node.nodeColl()
	kn.err = k.err
	if nc != nil {
		done, err := seg(nc, argErr(k.err))
		if err = nodeArgErr(kn, k, err); err != nil || done {
			return nc, err
		}
	}
	if err := msgs(); err != nil {
		return nc, err
	}
	k.err = kn.err
	return nc, nil
}

// nodeRelease is the last step of node-aware call k (op): each leader
// broadcasts b, and the call's argument error as the leaders agreed on
// it, inside its node (through the node's segment nc, if it has one).
func nodeRelease(h *hier, k *coll, nc *nodeColl, op string, b []byte) error {
	var kn coll
	if err := h.node.begin(&kn, op, k.id); err != nil {
		return err
	}
	kn.err = k.err
	if nc != nil {
		var local error
		if h.leaders != nil {
			local = argErr(k.err)
		}
		done, err := bcastNode(&kn, nc, b, 0, local)
		if err = nodeArgErr(&kn, k, err); err != nil || done {
			return err
		}
	}
	err := kn.bcast(b, 0)
	k.err = kn.err
	return err
}

// argErr is e as an error: nil for a nil e.
func argErr(e *argError) error {
	if e == nil {
		return nil
	}
	return e
}

// nodeArgErr sorts out the error of a node step through the segment: an
// argument error, which every rank of the node found alike, becomes the
// call's (k.err) and the step goes on; any other aborts the world, since
// the other nodes cannot learn of it (nodeAbort).
func nodeArgErr(kn, k *coll, err error) error {
	var ae *argError
	if err != nil && errors.As(err, &ae) && !errors.Is(err, ErrAborted) {
		k.err, kn.err = ae, ae
		return nil
	}
	return nodeAbort(kn, err)
}
