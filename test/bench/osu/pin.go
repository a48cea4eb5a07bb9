package osu

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// pin binds every thread of the process to CPU cpu, the way mpirun
// --bind-to core binds a rank. Threads started later inherit the mask from
// the thread that creates them; passes repeat until one finds no thread
// that a previous pass missed.
func pin(cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err)
			}
			done[tid], fresh = true, true
		}
		if !fresh {
			return nil
		}
	}
}
