package hosts

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// DisplayMap writes m as a table, one row per host, for gorun's
// --display-map (a simplified mpirun --display-map): the host, its slots
// (and max_slots), how many ranks it runs and which, consecutive ranks
// written as ranges. For example, 6 ranks by node on 3 hosts with 2 slots
// each and one with max_slots:
//
//	JOB MAP: 6 ranks on 3 hosts (map-by node)
//	HOST    SLOTS    RANKS  RANK LIST
//	node01  2        2      0,3
//	node02  2 max 4  2      1,4
//	node03  2        2      2,5
//
// The title also names --ppn and --oversubscribe when they are set, and a
// host with more ranks than its capacity is marked "oversubscribed". It
// returns the first write error.
func DisplayMap(w io.Writer, m *Map) error {
	used := 0
	for _, c := range m.Count {
		if c > 0 {
			used++
		}
	}
	var opts []string
	opts = append(opts, "map-by "+string(m.Options.MapBy))
	if m.Options.PPN > 0 {
		opts = append(opts, "ppn "+strconv.Itoa(m.Options.PPN))
	}
	if m.Options.Oversubscribe {
		opts = append(opts, "oversubscribe")
	}
	on := plural(len(m.Hosts), "host")
	if used < len(m.Hosts) {
		on = fmt.Sprintf("%d of %s", used, on)
	}
	if _, err := fmt.Fprintf(w, "JOB MAP: %s on %s (%s)\n", plural(m.NP(), "rank"), on, strings.Join(opts, ", ")); err != nil {
		return err
	}

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSLOTS\tRANKS\tRANK LIST")
	for h, host := range m.Hosts {
		slots := strconv.Itoa(host.Slots)
		if host.MaxSlots > 0 {
			slots += " max " + strconv.Itoa(host.MaxSlots)
		}
		list := rankList(m.Ranks(h))
		if m.Oversubscribed(h) {
			list += "  (oversubscribed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", host.Name, slots, m.Count[h], list)
	}
	return tw.Flush()
}

// rankList writes increasing ranks with runs as ranges: "0-3,8,10-11";
// "-" for none.
func rankList(ranks []int) string {
	if len(ranks) == 0 {
		return "-"
	}
	var b strings.Builder
	for i := 0; i < len(ranks); {
		j := i
		for j+1 < len(ranks) && ranks[j+1] == ranks[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(ranks[i]))
		if j > i {
			fmt.Fprintf(&b, "-%d", ranks[j])
		}
		i = j + 1
	}
	return b.String()
}
