package hosts

import (
	"errors"
	"fmt"
)

// MapBy is the order in which Place hands ranks to hosts.
type MapBy string

const (
	// MapBySlot is block placement, the default: each host takes as many
	// consecutive ranks as its capacity before the next host gets any.
	MapBySlot MapBy = "slot"
	// MapByNode is round-robin: one rank per host in host order, again
	// and again, passing over hosts whose capacity is used up.
	MapByNode MapBy = "node"
)

// Options are the placement flags. The zero value places by slot, uses
// every host's Slots as its capacity, and refuses to oversubscribe.
type Options struct {
	// PPN, when positive, is the capacity of every host (ranks per node)
	// instead of its Slots, as Hydra's -ppn does; 0 uses the slots.
	PPN int
	// MapBy is MapBySlot or MapByNode; "" means MapBySlot.
	MapBy MapBy
	// Oversubscribe allows more ranks than the hosts' total capacity;
	// see Place for where the extra ranks go.
	Oversubscribe bool
}

// ErrNotEnoughSlots is wrapped by Place's error when the ranks do not fit
// the hosts' capacity (without Options.Oversubscribe) or their max_slots.
var ErrNotEnoughSlots = errors.New("hosts: not enough slots available")

// Map is a placement: which host runs each rank.
type Map struct {
	Hosts     []Host  // the hosts given to Place, in their order
	Options   Options // as used: MapBy is never ""
	Host      []int   // Host[r] is the index in Hosts of rank r's host
	LocalRank []int   // LocalRank[r] is rank r's index among its host's ranks, in rank order
	Count     []int   // Count[h] is the number of ranks on Hosts[h]; may be 0
	caps      []int
}

// NP returns the number of ranks placed.
func (m *Map) NP() int { return len(m.Host) }

// Capacity returns the ranks host h takes before it is oversubscribed:
// Options.PPN if set, else the host's Slots.
func (m *Map) Capacity(h int) int { return m.caps[h] }

// Oversubscribed reports whether host h runs more ranks than its capacity.
func (m *Map) Oversubscribed(h int) bool { return m.Count[h] > m.caps[h] }

// Ranks returns the ranks on host h in increasing order, so that
// m.Ranks(h)[m.LocalRank[r]] == r for every rank r on h.
func (m *Map) Ranks(h int) []int {
	out := make([]int, 0, m.Count[h])
	for r, hh := range m.Host {
		if hh == h {
			out = append(out, r)
		}
	}
	return out
}

// Place assigns np ranks to hosts. A host's capacity is opt.PPN if
// positive, else its Slots; np == 0 means the total capacity (one rank
// per slot, Open MPI's default).
//
// Up to the total capacity, ranks go in the order of opt.MapBy: by slot,
// rank 0 to cap(0)-1 on the first host, the next cap(1) ranks on the
// second, and so on; by node, rank 0 on the first host, rank 1 on the
// second, ..., wrapping to the first host, and passing over hosts that
// already hold their capacity. If np is smaller than the total, the last
// hosts (by slot) or the later passes (by node) get fewer ranks or none:
// a host with Count 0 needs no agent.
//
// More ranks than the total capacity is an error wrapping
// ErrNotEnoughSlots that states both numbers, unless opt.Oversubscribe is
// set. Then placement wraps around: ranks from the total capacity on are
// placed by the same order again from the start (by slot: the first host
// takes its next cap(0) ranks, then the second host...), as many rounds
// as needed, so that hosts keep the proportions of their capacities. With
// MapBySlot a host's ranks are then no longer consecutive: "a:2,b:2" with
// 6 ranks puts 0,1,4,5 on a and 2,3 on b.
//
// A host's MaxSlots, when set, is never exceeded: --ppn above a host's
// max_slots is an error, and a wrapping round passes over hosts at their
// max; if every host has a max and their sum is below np, that is an error
// too.
//
// Other errors: no hosts, np < 0, opt.PPN < 0 or above MaxCount, an
// unknown opt.MapBy, a host with Slots < 1 and no PPN. The messages use
// gorun's flag names (--ppn, --map-by, --oversubscribe).
func Place(hosts []Host, np int, opt Options) (*Map, error) {
	switch {
	case len(hosts) == 0:
		return nil, errors.New("hosts: no hosts to place ranks on")
	case np < 0:
		return nil, fmt.Errorf("hosts: %d ranks requested: must not be negative (0 means one per slot)", np)
	case opt.PPN < 0 || opt.PPN > MaxCount:
		return nil, fmt.Errorf("hosts: --ppn %d: must be from 1 to %d, or 0 to use each host's slots", opt.PPN, MaxCount)
	}
	switch opt.MapBy {
	case "":
		opt.MapBy = MapBySlot
	case MapBySlot, MapByNode:
	default:
		return nil, fmt.Errorf("hosts: --map-by %q: must be %q or %q", opt.MapBy, MapBySlot, MapByNode)
	}

	caps := make([]int, len(hosts))
	total, maxTotal, allMax := 0, 0, true
	for i, h := range hosts {
		caps[i] = opt.PPN
		if opt.PPN == 0 {
			if h.Slots < 1 {
				return nil, fmt.Errorf("hosts: host %s has %d slots", h.Name, h.Slots)
			}
			caps[i] = h.Slots
		}
		if h.MaxSlots > 0 && caps[i] > h.MaxSlots {
			if opt.PPN > 0 {
				return nil, fmt.Errorf("%w: --ppn %d is more than max_slots=%d of host %s", ErrNotEnoughSlots, opt.PPN, h.MaxSlots, h.Name)
			}
			return nil, fmt.Errorf("hosts: host %s has %d slots, more than its max_slots=%d", h.Name, h.Slots, h.MaxSlots)
		}
		total += caps[i]
		maxTotal += h.MaxSlots
		allMax = allMax && h.MaxSlots > 0
	}
	if np == 0 {
		np = total
	}
	if np > total && !opt.Oversubscribe {
		verb := "have"
		if len(hosts) == 1 {
			verb = "has"
		}
		have := fmt.Sprintf("%s %s %s", plural(len(hosts), "host"), verb, plural(total, "slot"))
		if opt.PPN > 0 {
			have = fmt.Sprintf("--ppn %d on %s makes %s", opt.PPN, plural(len(hosts), "host"), plural(total, "slot"))
		}
		return nil, fmt.Errorf("%w to satisfy the %d ranks requested: %s; request fewer ranks, add slots, or pass --oversubscribe",
			ErrNotEnoughSlots, np, have)
	}
	if np > total && allMax && maxTotal < np {
		return nil, fmt.Errorf("%w to satisfy the %d ranks requested: even with --oversubscribe, the max_slots of the %s allow %d",
			ErrNotEnoughSlots, np, plural(len(hosts), "host"), maxTotal)
	}

	m := &Map{
		Hosts:     hosts,
		Options:   opt,
		Host:      make([]int, 0, np),
		LocalRank: make([]int, 0, np),
		Count:     make([]int, len(hosts)),
		caps:      caps,
	}
	full := func(h int) bool { return hosts[h].MaxSlots > 0 && m.Count[h] >= hosts[h].MaxSlots }
	for _, h := range order(caps, opt.MapBy, min(np, total)) {
		m.assign(h)
	}
	// Oversubscribed rounds: the same order over the hosts not yet at
	// their max_slots, rebuilt each round so a full host costs nothing.
	round := make([]int, len(hosts))
	for m.NP() < np {
		for h := range hosts {
			round[h] = caps[h]
			if full(h) {
				round[h] = 0
			}
		}
		next := order(round, opt.MapBy, total)
		if len(next) == 0 {
			return nil, fmt.Errorf("%w: every host is at its max_slots with %d of %d ranks placed", ErrNotEnoughSlots, m.NP(), np)
		}
		for _, h := range next {
			if m.NP() == np {
				break
			}
			if !full(h) {
				m.assign(h)
			}
		}
	}
	return m, nil
}

func (m *Map) assign(h int) {
	m.Host = append(m.Host, h)
	m.LocalRank = append(m.LocalRank, m.Count[h])
	m.Count[h]++
}

// order returns one round of placement, at most limit long: host indices
// in the order they take ranks, host h appearing caps[h] times.
func order(caps []int, by MapBy, limit int) []int {
	var out []int
	if by == MapBySlot {
		for h, c := range caps {
			for range c {
				if len(out) == limit {
					return out
				}
				out = append(out, h)
			}
		}
		return out
	}
	// By node: pass k visits, in order, the hosts with capacity above k.
	active := make([]int, 0, len(caps))
	for h, c := range caps {
		if c > 0 {
			active = append(active, h)
		}
	}
	for k := 1; len(active) > 0; k++ {
		keep := active[:0]
		for _, h := range active {
			if len(out) == limit {
				return out
			}
			out = append(out, h)
			if caps[h] > k {
				keep = append(keep, h)
			}
		}
		active = keep
	}
	return out
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
