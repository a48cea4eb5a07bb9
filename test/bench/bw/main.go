// Command bw is the OSU-style unidirectional bandwidth test of gorun, for 2
// ranks: gorun -np 2 ./bw [-rows].
//
// Rank 0 starts W Isends of one buffer and waits for them, then for a 0-byte
// ack; rank 1 starts W Irecvs into W distinct buffers, waits for them and
// sends the ack. W is 64, halved until W·size ≤ 64 MiB. The value is the
// bytes moved per second, as uni_bw in ../shared/bench/mpi/p2p.c: GB/s
// (1e9 B) in -rows mode, MB/s (1e6 B) in the OSU table.
//
// -sizes replaces the default sizes (8 KiB to 16 MiB) with a comma list of
// byte counts, for example -sizes 1,8,1024,65536,1048576 (test/bench/hosts.sh
// passes OSU's smaller sizes too).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/gorun-hpc/gorun/runtime"
	"github.com/gorun-hpc/gorun/test/bench/osu"
)

var sizes = []int{8192, 65536, 1 << 20, 4 << 20, 16 << 20}

var sizesFlag = flag.String("sizes", "", "comma list of message sizes in bytes, 1 to 64 MiB (default 8192,65536,1048576,4194304,16777216)")

const (
	winMax   = 64
	winBytes = 64 << 20
)

func main() {
	b := osu.Start("bw", "Bandwidth Test", true)
	if *sizesFlag != "" {
		s, err := parseSizes(*sizesFlag)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bw: -sizes: %v\n", err)
			b.Comm.Abort(err)
			os.Exit(2)
		}
		sizes = s
	}
	run(b)
	b.Finish()
}

// parseSizes reads -sizes: a comma list of sizes in bytes, each from 1 to
// winBytes (one message must fit the receive window).
func parseSizes(list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > winBytes {
			return nil, fmt.Errorf("%q is not a size from 1 to %d bytes", f, winBytes)
		}
		out = append(out, n)
	}
	return out, nil
}

// run measures and prints the results on b.
func run(b *osu.Bench) {
	c := b.Comm
	sbuf := osu.Buffer(sizes[len(sizes)-1])
	var rbuf []byte
	if c.Rank() == 1 {
		rbuf = osu.Buffer(winBytes)
	}
	reqs := make([]*runtime.Request, winMax)
	b.Header("Bandwidth (MB/s)", true)
	for _, n := range sizes {
		w := winMax
		for w*n > winBytes {
			w /= 2
		}
		b.Check(c.Barrier())
		per := b.Loop(3, func() error {
			if c.Rank() == 0 {
				return sendWindow(c, reqs[:w], sbuf[:n])
			}
			return recvWindow(c, reqs[:w], rbuf, n)
		})
		bytesPerS := float64(n*w) / per
		b.Emit("uni_bw", n, bytesPerS/1e9, "GB/s", bytesPerS/1e6)
	}
}

// sendWindow is rank 0's side: len(reqs) Isends of buf, Waitall, then a
// 0-byte Recv of the ack.
func sendWindow(c *runtime.Comm, reqs []*runtime.Request, buf []byte) error {
	for j := range reqs {
		r, err := runtime.Isend(c, buf, 1, 2)
		if err != nil {
			return err
		}
		reqs[j] = r
	}
	if err := runtime.Waitall(reqs...); err != nil {
		return err
	}
	_, err := runtime.Recv(c, []byte(nil), 1, 3)
	return err
}

// recvWindow is rank 1's side: len(reqs) Irecvs of n bytes into distinct
// parts of buf, Waitall, then a 0-byte Send of the ack.
func recvWindow(c *runtime.Comm, reqs []*runtime.Request, buf []byte, n int) error {
	for j := range reqs {
		r, err := runtime.Irecv(c, buf[j*n:(j+1)*n], 0, 2)
		if err != nil {
			return err
		}
		reqs[j] = r
	}
	if err := runtime.Waitall(reqs...); err != nil {
		return err
	}
	return runtime.Send(c, []byte(nil), 0, 3)
}
