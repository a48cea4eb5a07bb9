// Package osu is the shared harness of gorun's OSU-style micro-benchmarks
// (test/bench/latency, bw, allreduce, bcast, barrier, allgather, alltoall).
//
// It replicates the method of the C programs in ../shared/bench/mpi
// (bench.h) so that their numbers can be compared side by side: a timed
// warm-up of WarmFor(bytes) iterations, rank 0 sizing the real loop to last
// PERF_TARGET_S seconds (env, default 0.25) and broadcasting the count, and
// the mean time per iteration as the value.
//
// By default a program prints the OSU micro-benchmarks table format; with
// -rows it prints the rows of ../shared/bench (bench, bytes, value, unit,
// tab separated) so that bench/run.sh can interleave it with the MPIs.
package osu

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"

	"github.com/gorun-hpc/gorun/runtime"
)

// Bench is one benchmark program: its world, its output mode and its
// profile, if any.
type Bench struct {
	Comm *runtime.Comm // the world
	Rows bool          // print run.sh rows instead of the OSU table
	Out  io.Writer     // where rank 0 prints the results

	name  string
	title string
	sized bool
	prof  *os.File
	count []int64 // the broadcast iteration count
}

// Start parses the flags (-rows, -cpuprofile), joins the world and returns
// the benchmark. name is the program's name for messages, title the OSU
// title ("Latency Test"). If needTwo is set and the world does not have
// exactly 2 ranks, Start prints why and exits with status 2, like the C
// programs.
func Start(name, title string, needTwo bool) *Bench {
	rows := flag.Bool("rows", false, "print bench<TAB>bytes<TAB>value<TAB>unit rows (../shared/bench/run.sh format) instead of the OSU table")
	prof := flag.String("cpuprofile", "", "write a CPU profile of the timed run to `FILE`.RANK")
	flag.Parse()
	world, err := runtime.Init(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
	b := New(name, title, world, *rows, os.Stdout)
	if needTwo && world.Size() != 2 {
		if world.Rank() == 0 {
			fmt.Fprintf(os.Stderr, "%s: this benchmark needs exactly 2 ranks (got %d); run it with gorun -np 2\n", name, world.Size())
		}
		_ = world.Close()
		os.Exit(2)
	}
	if *prof != "" {
		f, err := os.Create(*prof + "." + strconv.Itoa(world.Rank()))
		b.Check(err)
		b.Check(pprof.StartCPUProfile(f))
		b.prof = f
	}
	return b
}

// New returns the benchmark name with OSU title on the communicator c,
// printing to out; Start uses it for the world, tests for a ranktest world.
func New(name, title string, c *runtime.Comm, rows bool, out io.Writer) *Bench {
	return &Bench{Comm: c, Rows: rows, Out: out, name: name, title: title, count: make([]int64, 1)}
}

// Check ends the job if err is not nil: it prints err on standard error,
// aborts the world so that no other rank waits for this one, and exits
// with status 1.
func (b *Bench) Check(err error) {
	if err == nil {
		return
	}
	fmt.Fprintf(os.Stderr, "%s: rank %d: %v\n", b.name, b.Comm.Rank(), err)
	b.Comm.Abort(err)
	os.Exit(1)
}

// Finish stops the profile and closes the world (MPI_Finalize); it exits
// with status 1 if that fails.
func (b *Bench) Finish() {
	if b.prof != nil {
		pprof.StopCPUProfile()
		b.Check(b.prof.Close())
	}
	if err := b.Comm.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "%s: rank %d: %v\n", b.name, b.Comm.Rank(), err)
		os.Exit(1)
	}
}

// Buffer returns n bytes with every page written, so that no page fault
// happens inside a timed loop (the C programs memset their buffers).
// Buffers larger than 32 KiB start on an 8 KiB boundary (Go's page).
func Buffer(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 0
	}
	return b
}
