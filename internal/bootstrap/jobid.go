package bootstrap

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
)

// NewJobID returns a fresh job id for a job launched by the process
// launcherPID: "<pid>.<16 hex digits>". The pid lets a later gorun tell the
// leftovers of a job whose launcher is gone (killed with SIGKILL) from those
// of a live job.
func NewJobID(launcherPID int) string {
	b := make([]byte, 8)
	rand.Read(b)
	return strconv.Itoa(launcherPID) + "." + hex.EncodeToString(b)
}

// LauncherPID returns the launcher pid embedded in a job id made by
// NewJobID.
func LauncherPID(jobID string) (int, bool) {
	p, _, ok := strings.Cut(jobID, ".")
	if !ok {
		return 0, false
	}
	pid, err := strconv.Atoi(p)
	return pid, err == nil && pid > 0
}

// ShmPrefix is the name prefix of every named shared-memory segment of job
// jobID (under /dev/shm). Ranks name their segments ShmPrefix(job)+suffix,
// and gorun removes whatever has that prefix when the job is over.
func ShmPrefix(jobID string) string { return "gorun-" + jobID + "-" }

// ShmJob returns the job id of a segment name made with ShmPrefix.
func ShmJob(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, "gorun-")
	if !ok {
		return "", false
	}
	job, _, ok := strings.Cut(rest, "-")
	return job, ok && job != ""
}
