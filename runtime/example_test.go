package runtime_test

import (
	"fmt"
	"sync"

	"github.com/gorun-hpc/gorun/runtime"
)

// Four ranks, here goroutines of one process (InitLocal), sum their
// numbers. Under gorun each rank is a process and gets its world from
// runtime.Init instead.
func ExampleAllreduce() {
	worlds, err := runtime.InitLocal(4)
	if err != nil {
		panic(err)
	}
	sums := make([]int, len(worlds))
	var wg sync.WaitGroup
	for _, world := range worlds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer world.Close()
			out := []int{0}
			if err := runtime.Allreduce(world, []int{world.Rank()}, out, runtime.Sum); err != nil {
				panic(err)
			}
			sums[world.Rank()] = out[0]
		}()
	}
	wg.Wait()
	fmt.Println(sums)
	// Output: [6 6 6 6]
}

// Rank 0 sends a slice to rank 1, which probes for its size first.
func ExampleProbe() {
	worlds, err := runtime.InitLocal(2)
	if err != nil {
		panic(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer worlds[0].Close()
		if err := runtime.Send(worlds[0], []float64{1.5, 2.5, 3.5}, 1, 7); err != nil {
			panic(err)
		}
	}()
	go func() {
		defer wg.Done()
		c := worlds[1]
		defer c.Close()
		st, err := runtime.Probe[float64](c, runtime.AnySource, 7)
		if err != nil {
			panic(err)
		}
		buf := make([]float64, st.Count)
		if _, err := runtime.Recv(c, buf, st.Source, st.Tag); err != nil {
			panic(err)
		}
		fmt.Println(st.Source, buf)
	}()
	wg.Wait()
	// Output: 0 [1.5 2.5 3.5]
}

// A nil communicator is the serial one: collectives copy, and Rank and
// Size are 0 and 1, so library code runs unchanged without MPI.
func ExampleComm_nil() {
	var c *runtime.Comm
	out := make([]float64, 2)
	if err := runtime.Allreduce(c, []float64{1, 2}, out, runtime.Sum); err != nil {
		panic(err)
	}
	fmt.Println(c.Rank(), c.Size(), out)
	// Output: 0 1 [1 2]
}
