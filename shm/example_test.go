//go:build linux

package shm_test

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/gorun-hpc/gorun/shm"
)

// Share an anonymous segment over a Unix socket. Here both ends live in one
// process; normally the receiver is another process of the node.
func Example() {
	s, err := shm.Create(1<<20, shm.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	a, b, err := pair()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	defer b.Close()
	meta := binary.LittleEndian.AppendUint64(nil, uint64(s.Size()))
	if err := shm.SendFD(a, s.FD(), meta); err != nil {
		fmt.Println(err)
		return
	}

	var got [8]byte
	fd, _, err := shm.RecvFD(b, got[:])
	if err != nil {
		fmt.Println(err)
		return
	}
	peer, err := shm.FromFD(fd, int64(binary.LittleEndian.Uint64(got[:])))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()

	xs, _ := shm.View[float64](s, 64, 4)
	flag, _ := shm.View[uint32](s, 0, 1)
	copy(xs, []float64{1, 2, 3, 4})
	atomic.StoreUint32(&flag[0], 1) // seq-cst: publishes xs
	shm.Wake(&flag[0], 1)

	pflag, _ := shm.View[uint32](peer, 0, 1)
	for atomic.LoadUint32(&pflag[0]) == 0 { // seq-cst: acquires xs
		shm.Wait(&pflag[0], 0, time.Second)
	}
	pxs, _ := shm.View[float64](peer, 64, 4)
	fmt.Println(pxs)
	// Output: [1 2 3 4]
}

func pair() (*net.UnixConn, *net.UnixConn, error) {
	addr := &net.UnixAddr{Name: fmt.Sprintf("@shm-example-%d", os.Getpid()), Net: "unix"}
	l, err := net.ListenUnix("unix", addr)
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	a, err := net.DialUnix("unix", nil, l.Addr().(*net.UnixAddr))
	if err != nil {
		return nil, nil, err
	}
	b, err := l.AcceptUnix()
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

// A named segment: created under a job-tagged name, opened by a peer, and
// unlinked once every peer has mapped it.
func ExampleOpen() {
	name := fmt.Sprintf("example-job%d-0", os.Getpid())
	s, err := shm.Create(4096, shm.Options{Name: name})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()

	peer, err := shm.Open(name, shm.Options{}) // in another process
	if err != nil {
		fmt.Println(err)
		return
	}
	defer peer.Close()
	s.Unlink() // every peer has mapped it: nothing can leak from now on

	s.Bytes()[0] = 42
	fmt.Println(peer.Bytes()[0])
	// Output: 42
}

func ExampleSweep() {
	// After a job, whatever ended it:
	removed, err := shm.Sweep("gorun-job1234-")
	fmt.Println(removed, err)
	// Output: [] <nil>
}
