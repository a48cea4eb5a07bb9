package runtime

// Test access to the node-aware collectives' internals (hier.go).

// HierState reports whether c's collectives are node-aware, its cached
// node and leaders communicators (nil before the first node-aware call, and
// leaders nil on non-leaders), and c's collective sequence number.
func HierState(c *Comm) (hierarchical bool, node, leaders *Comm, seq uint32) {
	hierarchical = c.hierarchical()
	if c.hier != nil {
		node, leaders = c.hier.node, c.hier.leaders
	}
	return hierarchical, node, leaders, c.seq
}

// NodeOfWorldRank returns the node identity of world rank wr.
func NodeOfWorldRank(c *Comm, wr int) string { return c.w.nodes[wr] }

// IsClosed reports whether c was closed.
func IsClosed(c *Comm) bool { return c.closed.Load() }
