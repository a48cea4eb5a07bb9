package shm

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Reserving tmpfs pages beyond the memory that is left does not fail with
// ENOMEM: the page allocator calls the OOM killer, or the memory cgroup
// kills a process of the cgroup, quite possibly another rank. The only way
// to turn that into an error is to look before reserving. The figures are
// estimates (MemAvailable counts page cache that may not be reclaimable,
// and other processes allocate concurrently), so this catches gross
// overcommit, not every case.

// availableMemory returns the bytes this process may still allocate:
// MemAvailable, lowered to the headroom of its memory cgroups. ok is false
// if /proc/meminfo cannot be read.
func availableMemory() (avail int64, ok bool) {
	avail, ok = memAvailable("/proc/meminfo")
	if !ok {
		return 0, false
	}
	if data, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		avail = min(avail, cgroupHeadroom("/sys/fs/cgroup", string(data)))
	}
	return avail, true
}

func memAvailable(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemAvailable:   24099868 kB
		rest, found := bytes.CutPrefix(sc.Bytes(), []byte("MemAvailable:"))
		if !found {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
		return kb << 10, err == nil
	}
	return 0, false
}

// cgroupHeadroom returns the smallest limit-minus-usage of the memory
// cgroups (v1 or v2) listed in procCgroup, the contents of
// /proc/self/cgroup, and of their ancestors, under the mount point root.
// It returns math.MaxInt64 where there is no limit or nothing is readable.
func cgroupHeadroom(root, procCgroup string) int64 {
	headroom := int64(math.MaxInt64)
	for line := range strings.Lines(procCgroup) {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, limitFile, usageFile string
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			dir, limitFile, usageFile = root, "memory.max", "memory.current"
			if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
				dir = filepath.Join(root, "unified") // hybrid layout
			}
		case strings.Contains(","+parts[1]+",", ",memory,"): // v1
			dir, limitFile, usageFile = filepath.Join(root, "memory"), "memory.limit_in_bytes", "memory.usage_in_bytes"
		default:
			continue
		}
		for p := filepath.Join(dir, parts[2]); strings.HasPrefix(p, dir); p = filepath.Dir(p) {
			limit, lok := readInt(filepath.Join(p, limitFile))
			usage, uok := readInt(filepath.Join(p, usageFile))
			if lok && uok {
				headroom = min(headroom, max(limit-usage, 0))
			}
			if p == dir {
				break
			}
		}
	}
	return headroom
}

// readInt reads a cgroup file holding a number or "max".
func readInt(path string) (int64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(data))
	if s == "max" {
		return math.MaxInt64, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
