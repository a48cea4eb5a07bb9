package launch

import (
	"errors"
	"log/slog"
	"os"
	"syscall"

	"github.com/gorun-hpc/gorun/internal/bootstrap"
	"github.com/gorun-hpc/gorun/shm"
)

// Named shared-memory segments of a job carry bootstrap.ShmPrefix(job).
// Ranks unlink them as soon as every peer has mapped them, but a rank that
// dies in between leaves the name behind. So every job's leftovers are
// swept when the job ends, and a job whose launcher was killed (nobody left
// to sweep) is swept by the next gorun on this host. The pid in a job id
// is that of the job's keeper on the host whose /dev/shm holds the names
// (bootstrap.ForKeeper): the launcher here, an agent on another host; so
// kill(pid, 0) is always asked on the right host.

// sweep removes what job left under /dev/shm.
func sweep(log *slog.Logger, job string) {
	removed, err := shm.Sweep(bootstrap.ShmPrefix(job))
	for _, r := range removed {
		log.Info("launch: removed a shared-memory segment the job left behind", "path", r)
	}
	if err != nil && !errors.Is(err, shm.ErrNotSupported) {
		log.Warn("launch: sweeping shared memory", "err", err)
	}
}

// sweepStale removes the segments of jobs whose launcher no longer runs.
func sweepStale(log *slog.Logger) {
	entries, err := os.ReadDir(shm.DefaultDir)
	if err != nil {
		return
	}
	done := map[string]bool{}
	for _, e := range entries {
		job, ok := bootstrap.ShmJob(e.Name())
		if !ok || done[job] {
			continue
		}
		done[job] = true
		pid, ok := bootstrap.LauncherPID(job)
		if !ok || launcherAlive(pid) {
			continue
		}
		sweep(log, job)
	}
}

// launcherAlive reports whether pid may still be a live launcher. A pid
// reused by another process counts as alive: leaving a name is safe,
// removing a live job's is not.
func launcherAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
