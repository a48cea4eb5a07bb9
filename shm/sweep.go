package shm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Sweep removes the named segments in [DefaultDir] whose names start with
// prefix, and returns their paths. A launcher calls it with a job's prefix
// (for example "gorun-<job>-") once every process of the job has exited, to
// collect what a crash left behind; on a live job it would remove names that
// peers have not opened yet. Memory already mapped stays valid in the
// processes that map it.
//
// prefix must be non-empty and contain no slash. Only regular files are
// removed. Sweep goes on after a failure and returns every failure joined.
// A missing DefaultDir matches [ErrNotSupported] and [fs.ErrNotExist].
func Sweep(prefix string) (removed []string, err error) {
	if prefix == "" || strings.ContainsAny(prefix, "/\x00") {
		return nil, invalidf("bad sweep prefix %q: want a non-empty name prefix without slashes", prefix)
	}
	entries, err := os.ReadDir(DefaultDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errorf([]error{ErrNotSupported, err}, "no shared memory directory %s", DefaultDir)
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(DefaultDir, e.Name())
		switch err := os.Remove(path); {
		case err == nil:
			removed = append(removed, path)
		case !errors.Is(err, fs.ErrNotExist): // a peer may unlink concurrently
			errs = append(errs, err)
		}
	}
	return removed, errors.Join(errs...)
}
