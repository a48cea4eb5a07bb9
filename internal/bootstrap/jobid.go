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
//
// The pid is only meaningful on the host where that process runs, and
// shared-memory names are the business of the host that holds them: the
// ranks of one host get the job id of their keeper there (the launcher
// here, an agent elsewhere), made with ForKeeper, so a sweep on any host
// judges only by a pid of its own.
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

// ForKeeper returns jobID with its pid replaced by keeperPID, the process
// that keeps the job's ranks on one host: the same job (the same hex part)
// with names that the host's own sweep can judge.
func ForKeeper(jobID string, keeperPID int) string {
	_, rest, ok := strings.Cut(jobID, ".")
	if !ok {
		rest = jobID
	}
	return strconv.Itoa(keeperPID) + "." + rest
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
