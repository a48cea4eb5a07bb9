package hosts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ReadHostfile opens the file at path and parses it with ParseHostfile.
func ReadHostfile(path string) ([]Host, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("hosts: reading hostfile: %w", err)
	}
	defer f.Close()
	return ParseHostfile(f, path)
}

// ParseHostfile reads a hostfile in either launcher's syntax, one host per
// line; name is the file's name for error messages. A line is one of
//
//	name                      one slot
//	name:n                    n slots (MPICH Hydra)
//	name slots=n              n slots (Open MPI)
//	name slots=n max_slots=m  n slots, and never more than m ranks even
//	                          with --oversubscribe (also "max-slots")
//	name max_slots=m          one slot, at most m ranks
//
// with blanks allowed around '='. A '#' starts a comment that runs to the
// end of the line; blank and comment-only lines are skipped. A name on
// several lines adds up its slots (see ParseHostSpec for names and order).
// A bare name is one slot as in Hydra (Open MPI would count the host's
// cores, which gorun cannot know before reaching the host).
//
// Errors are *Error with the 1-based line number: an unknown key, a key
// given twice, both ":n" and slots=, a count that is not a whole number
// from 1 to MaxCount, max_slots below slots, a bad name, or a file with no
// host at all.
func ParseHostfile(r io.Reader, name string) ([]Host, error) {
	src := "hostfile " + name
	var b builder
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		body, _, _ := strings.Cut(text, "#")
		body = strings.TrimSpace(body)
		if body == "" {
			continue
		}
		host, slots, maxSlots, err := parseHostLine(body)
		if err == nil {
			err = b.add(host, slots, maxSlots)
		}
		if err != nil {
			return nil, &Error{Source: src, Line: line, Text: strings.TrimSpace(text), Err: err}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &Error{Source: src, Line: line + 1, Text: "", Err: err}
	}
	if len(b.hosts) == 0 {
		return nil, &Error{Source: src, Text: "", Err: errors.New("no hosts in the file")}
	}
	return b.hosts, nil
}

// parseHostLine reads one non-blank hostfile line without its comment.
func parseHostLine(body string) (host string, slots, maxSlots int, err error) {
	fields := strings.Fields(joinEquals(body))
	host, slots, err = splitNameCount(fields[0])
	if err != nil {
		return "", 0, 0, err
	}
	colon := strings.Contains(fields[0], ":")
	seen := map[string]bool{}
	for _, f := range fields[1:] {
		key, val, ok := strings.Cut(f, "=")
		if !ok {
			return "", 0, 0, fmt.Errorf("%q is not key=value (keys: slots, max_slots)", f)
		}
		if key == "max-slots" {
			key = "max_slots"
		}
		if seen[key] {
			return "", 0, 0, fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		switch key {
		case "slots":
			if colon {
				return "", 0, 0, fmt.Errorf("both %q and slots= give the slot count", fields[0])
			}
			if slots, err = parseCount("slots", val, 1); err != nil {
				return "", 0, 0, err
			}
		case "max_slots":
			if maxSlots, err = parseCount("max_slots", val, 1); err != nil {
				return "", 0, 0, err
			}
		default:
			return "", 0, 0, fmt.Errorf("unknown key %q (keys: slots, max_slots)", key)
		}
	}
	if maxSlots != 0 && maxSlots < slots {
		return "", 0, 0, fmt.Errorf("max_slots=%d is less than the %d slots", maxSlots, slots)
	}
	return host, slots, maxSlots, nil
}

// joinEquals removes the blanks around every '=' so that "slots = 4"
// becomes one field "slots=4".
func joinEquals(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	var b strings.Builder
	for i, part := range strings.Split(s, "=") {
		if i > 0 {
			b.WriteByte('=')
			part = strings.TrimLeft(part, " \t")
		}
		b.WriteString(strings.TrimRight(part, " \t"))
	}
	return b.String()
}
