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
// bench<TAB>bytes<TAB>value<TAB>unit (value with 4 decimals, as emit in
// bench.h), otherwise the OSU line of bytes and osu, the value in the OSU
// unit (µs, or MB/s of 1e6 B for bandwidth), with 2 decimals.
func (b *Bench) Emit(bench string, bytes int, value float64, unit string, osu float64) {
	if b.Comm.Rank() != 0 {
		return
	}
	switch {
	case b.Rows:
		fmt.Fprintf(b.Out, "%s\t%d\t%.4f\t%s\n", bench, bytes, value, unit)
	case b.sized:
		fmt.Fprintf(b.Out, "%-10d%18.2f\n", bytes, osu)
	default:
		fmt.Fprintf(b.Out, "%17.2f\n", osu)
	}
}
