package launch

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// cpuPlan returns the CPU each rank is bound to, or nil when the ranks are
// not bound (Job.BindTo).
func (j *Job) cpuPlan() ([]int, error) {
	if j.BindTo != "core" {
		return nil, nil
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("launch: --bind-to core: reading gorun's CPU set: %w", err)
	}
	var cpus []int
	for c := 0; c < len(set)*64; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) == 0 {
		return nil, nil
	}
	plan := make([]int, j.NP)
	for r := range plan {
		plan[r] = cpus[r%len(cpus)]
	}
	return plan, nil
}

// bindThread restricts the calling OS thread (locked by the caller) to cpu,
// so that a child forked from it inherits the restriction with all the
// threads it will start, and returns a function that restores the thread's
// previous CPU set.
func bindThread(cpu int) (restore func(), err error) {
	var old, one unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	one.Set(cpu)
	if err := unix.SchedSetaffinity(0, &one); err != nil {
		return nil, err
	}
	return func() { _ = unix.SchedSetaffinity(0, &old) }, nil
}
