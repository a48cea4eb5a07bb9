package hosts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Host is one machine of a job and the number of ranks it takes.
type Host struct {
	// Name is what the launcher connects to (a host name, an IPv4
	// address, or user@host), exactly as given: names are not resolved or
	// case-folded, so "n1" and "N1" are two hosts.
	Name string
	// Slots is the number of ranks the host takes before it counts as
	// oversubscribed; at least 1.
	Slots int
	// MaxSlots is a hard limit on the ranks placed on the host, which even
	// Options.Oversubscribe does not exceed; 0 means no limit. Only a
	// hostfile's max_slots sets it.
	MaxSlots int
}

// MaxCount bounds every slot or task count this package reads, so sums of
// counts cannot overflow and a typo like "h:40000000000" is an error.
const MaxCount = 1 << 20

// MaxHosts bounds the number of host names one hostlist expression or one
// task-count list may expand to (Slurm's own limit for one range is 64K).
const MaxHosts = 1 << 16

// Error is a host specification that cannot be read: where it came from,
// which entry, and what is wrong with it. Every parse error of this package
// is an *Error.
type Error struct {
	Source string // "--host", "hostfile PATH", "hostlist", "counts", or a variable such as "SLURM_JOB_NODELIST"
	Line   int    // 1-based line in a hostfile; 0 when the source has no lines
	Text   string // the offending entry, line or value
	Err    error  // what is wrong
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	fmt.Fprintf(&b, ": %q: %v", e.Text, e.Err)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// ParseHostSpec reads the value of --host: comma-separated entries "name"
// or "name:n". A bare name is one slot and every repetition of a name adds
// its slots to the first entry of that name, as in Open MPI, so
// "h1,h1,h2" is h1 with 2 slots and h2 with 1. Hosts keep the order in
// which their names first appear. Blanks around entries are ignored; an
// empty entry, a count that is not a whole number from 1 to MaxCount, and
// a name with characters other than letters, digits, '.', '-', '_' and one
// '@' are errors. There is no "name:*" form.
func ParseHostSpec(spec string) ([]Host, error) {
	const src = "--host"
	if strings.TrimSpace(spec) == "" {
		return nil, &Error{Source: src, Text: spec, Err: errors.New("no hosts given")}
	}
	var b builder
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			return nil, &Error{Source: src, Text: spec, Err: errors.New("empty entry (two commas in a row, or a comma at an end)")}
		}
		name, slots, err := splitNameCount(entry)
		if err != nil {
			return nil, &Error{Source: src, Text: entry, Err: err}
		}
		if err := b.add(name, slots, 0); err != nil {
			return nil, &Error{Source: src, Text: entry, Err: err}
		}
	}
	return b.hosts, nil
}

// splitNameCount splits "name" or "name:n" and checks both parts.
func splitNameCount(s string) (name string, slots int, err error) {
	name, count, hasCount := strings.Cut(s, ":")
	if err := checkName(name); err != nil {
		return "", 0, err
	}
	if !hasCount {
		return name, 1, nil
	}
	slots, err = parseCount("slot count", count, 1)
	if err != nil {
		return "", 0, err
	}
	return name, slots, nil
}

// checkName accepts host names, IPv4 addresses and user@host. It refuses
// a leading '-' above all: the name becomes an argument of ssh, where
// "-oProxyCommand=..." would be an option.
func checkName(name string) error {
	if name == "" {
		return errors.New("empty host name")
	}
	if name[0] == '-' {
		return fmt.Errorf("host name %q starts with '-'", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_', c == '@':
		default:
			return fmt.Errorf("host name %q has the character %q (allowed: letters, digits, '.', '-', '_', '@')", name, rune(c))
		}
	}
	if user, host, ok := strings.Cut(name, "@"); ok {
		if user == "" || host == "" || strings.Contains(host, "@") || host[0] == '-' {
			return fmt.Errorf("host name %q is not user@host", name)
		}
	}
	return nil
}

// parseCount reads a decimal count from min to MaxCount: digits only, no
// sign, no blanks. what names the count in the error.
func parseCount(what, s string, min int) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("%s is empty", what)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%s %q is not a whole number", what, s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n > MaxCount {
		return 0, fmt.Errorf("%s %s is more than %d", what, s, MaxCount)
	}
	if n < min {
		return 0, fmt.Errorf("%s %d is less than %d", what, n, min)
	}
	return n, nil
}

// builder collects hosts in order of first appearance and merges repeated
// names: slots add up; MaxSlots is the sum of the entries' max_slots if
// every entry of the name gave one, and 0 (no limit) otherwise.
type builder struct {
	hosts []Host
	index map[string]int
	unlim map[int]bool // hosts with an entry without max_slots
}

func (b *builder) add(name string, slots, maxSlots int) error {
	if b.index == nil {
		b.index = make(map[string]int)
		b.unlim = make(map[int]bool)
	}
	i, seen := b.index[name]
	if !seen {
		i = len(b.hosts)
		b.index[name] = i
		b.hosts = append(b.hosts, Host{Name: name})
	}
	h := &b.hosts[i]
	if h.Slots+slots > MaxCount {
		return fmt.Errorf("host %s would have %d slots, more than %d", name, h.Slots+slots, MaxCount)
	}
	h.Slots += slots
	if maxSlots == 0 {
		b.unlim[i] = true
	}
	if b.unlim[i] {
		h.MaxSlots = 0
	} else {
		h.MaxSlots += maxSlots
	}
	return nil
}
