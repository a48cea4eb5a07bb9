package hosts

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

func TestPlace(t *testing.T) {
	hm := func(name string, slots, maxSlots int) Host { return Host{Name: name, Slots: slots, MaxSlots: maxSlots} }
	for _, tc := range []struct {
		name  string
		hosts []Host
		np    int
		opt   Options
		want  []int // host of each rank
	}{
		{"block", []Host{h("a", 2), h("b", 2)}, 3, Options{}, []int{0, 0, 1}},
		{"block explicit", []Host{h("a", 2), h("b", 2)}, 4, Options{MapBy: MapBySlot}, []int{0, 0, 1, 1}},
		{"block uneven", []Host{h("a", 1), h("b", 3), h("c", 2)}, 6, Options{}, []int{0, 1, 1, 1, 2, 2}},
		{"by node", []Host{h("a", 2), h("b", 2)}, 3, Options{MapBy: MapByNode}, []int{0, 1, 0}},
		{"by node skips full hosts", []Host{h("a", 1), h("b", 3), h("c", 2)}, 6, Options{MapBy: MapByNode}, []int{0, 1, 2, 1, 2, 1}},
		{"np 0 fills every slot", []Host{h("a", 2), h("b", 1)}, 0, Options{}, []int{0, 0, 1}},
		{"ppn replaces slots", []Host{h("a", 4), h("b", 4)}, 2, Options{PPN: 1}, []int{0, 1}},
		{"ppn block", []Host{h("a", 4), h("b", 4)}, 6, Options{PPN: 3}, []int{0, 0, 0, 1, 1, 1}},
		{"ppn above slots", []Host{h("a", 1), h("b", 1)}, 4, Options{PPN: 2}, []int{0, 0, 1, 1}},
		{"ppn np 0", []Host{h("a", 1), h("b", 9)}, 0, Options{PPN: 2, MapBy: MapByNode}, []int{0, 1, 0, 1}},
		{"fewer ranks than hosts", []Host{h("a", 2), h("b", 2), h("c", 2)}, 2, Options{MapBy: MapByNode}, []int{0, 1}},
		{"oversubscribe block wraps", []Host{h("a", 2), h("b", 2)}, 6, Options{Oversubscribe: true}, []int{0, 0, 1, 1, 0, 0}},
		{"oversubscribe by node wraps", []Host{h("a", 2), h("b", 1)}, 5, Options{MapBy: MapByNode, Oversubscribe: true}, []int{0, 1, 0, 0, 1}},
		{"oversubscribe not needed", []Host{h("a", 2)}, 2, Options{Oversubscribe: true}, []int{0, 0}},
		{"oversubscribe one host", []Host{h("a", 1)}, 3, Options{Oversubscribe: true}, []int{0, 0, 0}},
		{"oversubscribe with ppn", []Host{h("a", 1), h("b", 1)}, 5, Options{PPN: 1, Oversubscribe: true}, []int{0, 1, 0, 1, 0}},
		{"max_slots stops a host", []Host{hm("a", 1, 2), h("b", 1)}, 5, Options{Oversubscribe: true}, []int{0, 1, 0, 1, 1}},
		{"max_slots by node", []Host{hm("a", 2, 3), h("b", 1)}, 7, Options{MapBy: MapByNode, Oversubscribe: true}, []int{0, 1, 0, 0, 1, 1, 1}},
		{"max_slots exactly filled", []Host{hm("a", 1, 2), hm("b", 1, 1)}, 3, Options{Oversubscribe: true}, []int{0, 1, 0}},
		{"ppn at max_slots", []Host{hm("a", 1, 2)}, 2, Options{PPN: 2}, []int{0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Place(tc.hosts, tc.np, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(m.Host, tc.want) {
				t.Errorf("hosts of ranks = %v, want %v", m.Host, tc.want)
			}
			checkMap(t, m, tc.hosts, tc.opt)
		})
	}
}

// checkMap checks what every Map must satisfy.
func checkMap(t *testing.T, m *Map, hosts []Host, opt Options) {
	t.Helper()
	if len(m.LocalRank) != m.NP() || len(m.Count) != len(hosts) || !reflect.DeepEqual(m.Hosts, hosts) {
		t.Fatalf("map shape: %d ranks, %d local ranks, %d counts, %d hosts", m.NP(), len(m.LocalRank), len(m.Count), len(hosts))
	}
	if m.Options.MapBy == "" {
		t.Errorf("Options.MapBy is empty")
	}
	seen := make([]int, len(hosts))
	for r, hh := range m.Host {
		if m.LocalRank[r] != seen[hh] {
			t.Errorf("rank %d: local rank %d, want %d", r, m.LocalRank[r], seen[hh])
		}
		seen[hh]++
		if got := m.Ranks(hh)[m.LocalRank[r]]; got != r {
			t.Errorf("Ranks(%d)[%d] = %d, want %d", hh, m.LocalRank[r], got, r)
		}
	}
	if !reflect.DeepEqual(seen, m.Count) {
		t.Errorf("Count = %v, ranks per host = %v", m.Count, seen)
	}
	for i, host := range hosts {
		if host.MaxSlots > 0 && m.Count[i] > host.MaxSlots {
			t.Errorf("host %s: %d ranks, max_slots %d", host.Name, m.Count[i], host.MaxSlots)
		}
		if m.Oversubscribed(i) && !opt.Oversubscribe {
			t.Errorf("host %s oversubscribed (%d > %d) without Oversubscribe", host.Name, m.Count[i], m.Capacity(i))
		}
	}
}

func TestPlaceErrors(t *testing.T) {
	hm := func(name string, slots, maxSlots int) Host { return Host{Name: name, Slots: slots, MaxSlots: maxSlots} }
	two := []Host{h("a", 4), h("b", 4)}
	for _, tc := range []struct {
		name  string
		hosts []Host
		np    int
		opt   Options
		msg   string
		slots bool // wraps ErrNotEnoughSlots
	}{
		{"no hosts", nil, 1, Options{}, "hosts: no hosts to place ranks on", false},
		{"negative np", two, -1, Options{}, "hosts: -1 ranks requested: must not be negative (0 means one per slot)", false},
		{"negative ppn", two, 1, Options{PPN: -1}, "hosts: --ppn -1: must be from 1 to 1048576, or 0 to use each host's slots", false},
		{"huge ppn", two, 1, Options{PPN: MaxCount + 1}, "hosts: --ppn 1048577: must be", false},
		{"bad map-by", two, 1, Options{MapBy: "core"}, `hosts: --map-by "core": must be "slot" or "node"`, false},
		{"host without slots", []Host{{Name: "a"}}, 1, Options{}, "hosts: host a has 0 slots", false},
		{"slots above max", []Host{hm("a", 3, 2)}, 1, Options{}, "hosts: host a has 3 slots, more than its max_slots=2", false},
		{"too many ranks", two, 9, Options{},
			"hosts: not enough slots available to satisfy the 9 ranks requested: 2 hosts have 8 slots; request fewer ranks, add slots, or pass --oversubscribe", true},
		{"too many ranks one host", []Host{h("a", 1)}, 2, Options{MapBy: MapByNode},
			"hosts: not enough slots available to satisfy the 2 ranks requested: 1 host has 1 slot;", true},
		{"too many ranks for ppn", two, 5, Options{PPN: 2},
			"hosts: not enough slots available to satisfy the 5 ranks requested: --ppn 2 on 2 hosts makes 4 slots; request fewer ranks", true},
		{"ppn above max", []Host{h("a", 1), hm("b", 1, 2)}, 1, Options{PPN: 3},
			"hosts: not enough slots available: --ppn 3 is more than max_slots=2 of host b", true},
		{"max_slots with oversubscribe", []Host{hm("a", 1, 2), hm("b", 2, 3)}, 6, Options{Oversubscribe: true},
			"hosts: not enough slots available to satisfy the 6 ranks requested: even with --oversubscribe, the max_slots of the 2 hosts allow 5", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := Place(tc.hosts, tc.np, tc.opt)
			if err == nil {
				t.Fatalf("Place succeeded: %v", m.Host)
			}
			if !strings.HasPrefix(err.Error(), tc.msg) {
				t.Errorf("error %q\ndoes not start with %q", err, tc.msg)
			}
			if errors.Is(err, ErrNotEnoughSlots) != tc.slots {
				t.Errorf("errors.Is(err, ErrNotEnoughSlots) = %v, want %v", !tc.slots, tc.slots)
			}
		})
	}
}

// naivePlace places rank by rank, the way the rules read: a round gives
// every host up to its capacity, in block or round-robin order, skipping
// hosts at max_slots; a new round starts from the first host when no host
// can take another rank in this one. ok is false where Place must fail.
func naivePlace(hosts []Host, np int, opt Options) (place []int, ok bool) {
	caps := make([]int, len(hosts))
	total := 0
	for i, h := range hosts {
		caps[i] = h.Slots
		if opt.PPN > 0 {
			caps[i] = opt.PPN
		}
		if h.MaxSlots > 0 && caps[i] > h.MaxSlots {
			return nil, false
		}
		total += caps[i]
	}
	if np == 0 {
		np = total
	}
	if np > total && !opt.Oversubscribe {
		return nil, false
	}
	count := make([]int, len(hosts))
	used := make([]int, len(hosts)) // in this round
	next := 0                       // round-robin pointer
	eligible := func(i int) bool {
		return used[i] < caps[i] && (hosts[i].MaxSlots == 0 || count[i] < hosts[i].MaxSlots)
	}
	for len(place) < np {
		pick := -1
		for k := range hosts {
			i := k
			if opt.MapBy == MapByNode {
				i = (next + k) % len(hosts)
			}
			if eligible(i) {
				pick = i
				break
			}
		}
		if pick < 0 { // the round is over; a new one must be able to place
			clear(used)
			next = 0
			fresh := false
			for i := range hosts {
				fresh = fresh || eligible(i)
			}
			if !fresh {
				return nil, false
			}
			continue
		}
		place = append(place, pick)
		used[pick]++
		count[pick]++
		next = pick + 1
	}
	return place, true
}

func TestPlaceNaive(t *testing.T) {
	var placed, wrapped, capped, failed int
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
		for iter := range 500 {
			hosts := make([]Host, 1+rng.IntN(6))
			for i := range hosts {
				hosts[i] = Host{Name: string(rune('a' + i)), Slots: 1 + rng.IntN(5)}
				if rng.IntN(3) == 0 {
					hosts[i].MaxSlots = hosts[i].Slots + rng.IntN(4)
				}
			}
			var opt Options
			if rng.IntN(3) == 0 {
				opt.PPN = 1 + rng.IntN(4)
			}
			opt.MapBy = []MapBy{"", MapBySlot, MapByNode}[rng.IntN(3)]
			opt.Oversubscribe = rng.IntN(2) == 0
			np := rng.IntN(31)

			want, wantOK := naivePlace(hosts, np, opt)
			m, err := Place(hosts, np, opt)
			if (err == nil) != wantOK {
				t.Fatalf("seed %d iter %d: Place(%v, %d, %+v): err %v, naive ok %v", seed, iter, hosts, np, opt, err, wantOK)
			}
			if err != nil {
				if !errors.Is(err, ErrNotEnoughSlots) {
					t.Fatalf("seed %d iter %d: error %v does not wrap ErrNotEnoughSlots", seed, iter, err)
				}
				failed++
				continue
			}
			if !reflect.DeepEqual(m.Host, want) {
				t.Fatalf("seed %d iter %d: Place(%v, %d, %+v)\n= %v\nnaive %v", seed, iter, hosts, np, opt, m.Host, want)
			}
			checkMap(t, m, hosts, opt)
			placed++
			for i := range hosts {
				if m.Oversubscribed(i) {
					wrapped++
					break
				}
			}
			for i, host := range hosts {
				if host.MaxSlots > 0 && m.Count[i] == host.MaxSlots && m.Oversubscribed(i) {
					capped++
					break
				}
			}
		}
	}
	t.Logf("%d placements (%d oversubscribed, %d up to a max_slots), %d errors", placed, wrapped, capped, failed)
	if wrapped < 100 || capped < 50 || failed < 100 || placed-wrapped < 100 {
		t.Errorf("the random inputs miss a case")
	}
}
