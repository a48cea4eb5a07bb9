package osu

import "fmt"

// Header prints, at rank 0 and in OSU mode, the title line and the column
// line: "# Size" and col, or col alone when sized is false (osu_barrier).
func (b *Bench) Header(col string, sized bool) {
	b.sized = sized
	if b.Rows || b.Comm.Rank() != 0 {
		return
	}
	fmt.Fprintf(b.Out, "# OSU MPI %s (gorun)\n", b.title)
	if sized {
		fmt.Fprintf(b.Out, "%-10s%18s\n", "# Size", col)
	} else {
		fmt.Fprintf(b.Out, "# %s\n", col)
	}
}

// Emit prints one result at rank 0: in -rows mode the line
// bench<TAB>bytes<TAB>value<TAB>unit (value with 6 significant digits:
// bench.h's emit prints 4 decimals, which leaves a bandwidth of a few bytes
// per message, 0.0001 GB/s, one digit; test/bench/hosts.sh makes its copy of
// the C programs print 6 significant digits too), otherwise the OSU line of bytes and osu, the value in the OSU
// unit (µs, or MB/s of 1e6 B for bandwidth), with 2 decimals.
func (b *Bench) Emit(bench string, bytes int, value float64, unit string, osu float64) {
	if b.Comm.Rank() != 0 {
		return
	}
	switch {
	case b.Rows:
		fmt.Fprintf(b.Out, "%s\t%d\t%.6g\t%s\n", bench, bytes, value, unit)
	case b.sized:
		fmt.Fprintf(b.Out, "%-10d%18.2f\n", bytes, osu)
	default:
		fmt.Fprintf(b.Out, "%17.2f\n", osu)
	}
}
