package hosts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ParseHostlist expands a Slurm hostlist expression, as in
// SLURM_JOB_NODELIST, into host names in Slurm's order:
//
//	node[01-04,7]            node01 node02 node03 node04 node7
//	n1,n[3-5],gpu[01-02]     n1 n3 n4 n5 gpu01 gpu02
//	rack[0-1]_blade[0-1]     rack0_blade0 rack0_blade1 rack1_blade0 rack1_blade1
//	node[1-2]-ib             node1-ib node2-ib
//
// Elements are separated by commas or blanks (commas inside brackets
// belong to the brackets), and empty elements are skipped, as Slurm's
// parser does. A bracket holds comma-separated numbers and ranges lo-hi
// with lo <= hi; a number is printed with at least as many digits as lo
// was written with, so leading zeros are kept ("[08-10]" is 08 09 10,
// "[8-10]" is 8 9 10). An element may have several brackets ("one or more
// pairs of square brackets", slurm.conf(5)); the leftmost varies slowest,
// as in Slurm, and text may follow the last bracket. Names are not
// deduplicated.
//
// Not accepted (an *Error saying why): an unclosed or nested bracket, an
// empty bracket or list item, anything but digits and '-' inside brackets
// (Slurm's multi-dimensional "[123x456]" boxes included), a descending
// range, an expansion to more than MaxHosts names, a name ParseHostSpec
// would refuse, and an expression with no name at all.
func ParseHostlist(expr string) ([]string, error) {
	const src = "hostlist"
	var out []string
	elems, err := splitHostlist(expr)
	if err != nil {
		return nil, &Error{Source: src, Text: expr, Err: err}
	}
	for _, elem := range elems {
		out, err = expandElem(out, elem)
		if err != nil {
			return nil, &Error{Source: src, Text: elem, Err: err}
		}
	}
	if len(out) == 0 {
		return nil, &Error{Source: src, Text: expr, Err: errors.New("no host names")}
	}
	return out, nil
}

// isSep reports a separator between hostlist elements.
func isSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// splitHostlist cuts expr at separators outside brackets. It checks that
// brackets are balanced and not nested.
func splitHostlist(expr string) ([]string, error) {
	var elems []string
	start, open := 0, -1
	for i := 0; i < len(expr); i++ {
		switch c := expr[i]; {
		case c == '[':
			if open >= 0 {
				return nil, fmt.Errorf("'[' at offset %d inside the bracket opened at offset %d", i, open)
			}
			open = i
		case c == ']':
			if open < 0 {
				return nil, fmt.Errorf("']' at offset %d closes no bracket", i)
			}
			open = -1
		case isSep(c) && open < 0:
			if i > start {
				elems = append(elems, expr[start:i])
			}
			start = i + 1
		}
	}
	if open >= 0 {
		return nil, fmt.Errorf("the bracket opened at offset %d is not closed", open)
	}
	if start < len(expr) {
		elems = append(elems, expr[start:])
	}
	return elems, nil
}

// expandElem appends the names of one element (balanced, unnested
// brackets) to out.
func expandElem(out []string, elem string) ([]string, error) {
	// The element is text and bracket groups; names is the running
	// cartesian product, leftmost group varying slowest.
	names := []string{""}
	rest := elem
	for rest != "" {
		i := strings.IndexByte(rest, '[')
		if i < 0 {
			names = appendSuffix(names, rest)
			break
		}
		names = appendSuffix(names, rest[:i])
		j := strings.IndexByte(rest, ']')
		nums, err := expandRanges(rest[i+1 : j])
		if err != nil {
			return nil, err
		}
		if len(names)*len(nums) > MaxHosts || len(out)+len(names)*len(nums) > MaxHosts {
			return nil, fmt.Errorf("expands to more than %d host names", MaxHosts)
		}
		next := make([]string, 0, len(names)*len(nums))
		for _, p := range names {
			for _, n := range nums {
				next = append(next, p+n)
			}
		}
		names = next
		rest = rest[j+1:]
	}
	for _, n := range names {
		if err := checkName(n); err != nil {
			return nil, err
		}
	}
	if len(out)+len(names) > MaxHosts {
		return nil, fmt.Errorf("expands to more than %d host names", MaxHosts)
	}
	return append(out, names...), nil
}

func appendSuffix(names []string, s string) []string {
	for i := range names {
		names[i] += s
	}
	return names
}

// expandRanges expands the inside of one bracket, "01-04,7", into the
// numbers as text, zero-padded to the width of each range's low end.
func expandRanges(list string) ([]string, error) {
	if list == "" {
		return nil, errors.New("empty brackets")
	}
	var nums []string
	for item := range strings.SplitSeq(list, ",") {
		loText, hiText, isRange := strings.Cut(item, "-")
		if !isRange {
			hiText = loText
		}
		lo, err := parseRangeNum(item, loText)
		if err != nil {
			return nil, err
		}
		hi, err := parseRangeNum(item, hiText)
		if err != nil {
			return nil, err
		}
		if lo > hi {
			return nil, fmt.Errorf("range %q runs backwards", item)
		}
		if hi-lo >= MaxHosts || len(nums)+int(hi-lo+1) > MaxHosts {
			return nil, fmt.Errorf("range %q has more than %d numbers", item, MaxHosts)
		}
		width := len(loText)
		for n := lo; n <= hi; n++ {
			s := strconv.FormatUint(n, 10)
			if len(s) < width {
				s = strings.Repeat("0", width-len(s)) + s
			}
			nums = append(nums, s)
		}
	}
	return nums, nil
}

// parseRangeNum reads one end of a range: digits only, at most 18 of them
// so that the value and hi-lo+1 fit in a uint64.
func parseRangeNum(item, s string) (uint64, error) {
	if s == "" {
		if item == "" {
			return 0, errors.New("empty item in brackets")
		}
		return 0, fmt.Errorf("range %q has an empty end", item)
	}
	if len(s) > 18 {
		return 0, fmt.Errorf("number %q in brackets is too long", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q in brackets is not a number or a range lo-hi", item)
		}
	}
	return strconv.ParseUint(s, 10, 64)
}

// ParseTaskCounts expands Slurm's per-node count lists, the format of
// SLURM_TASKS_PER_NODE and SLURM_JOB_CPUS_PER_NODE: comma-separated items
// "n" or "n(xk)", the latter meaning k consecutive nodes with n each, so
// "2(x3),1" is [2 2 2 1]. Counts may be 0 (the format allows it; callers
// decide); k is at least 1. Blanks, empty items, other text, counts above
// MaxCount and lists longer than MaxHosts are *Error with Source "counts".
func ParseTaskCounts(s string) ([]int, error) {
	const src = "counts"
	if s == "" {
		return nil, &Error{Source: src, Text: s, Err: errors.New("empty list")}
	}
	var out []int
	for item := range strings.SplitSeq(s, ",") {
		countText, rep := item, 1
		if i := strings.IndexByte(item, '('); i >= 0 {
			inner, ok := strings.CutSuffix(item[i+1:], ")")
			inner, okx := strings.CutPrefix(inner, "x")
			if !ok || !okx {
				return nil, &Error{Source: src, Text: item, Err: errors.New("a repeat must be written n(xk)")}
			}
			var err error
			if rep, err = parseCount("repeat", inner, 1); err != nil {
				return nil, &Error{Source: src, Text: item, Err: err}
			}
			countText = item[:i]
		}
		n, err := parseCount("count", countText, 0)
		if err != nil {
			return nil, &Error{Source: src, Text: item, Err: err}
		}
		if len(out)+rep > MaxHosts {
			return nil, &Error{Source: src, Text: item, Err: fmt.Errorf("the list expands to more than %d nodes", MaxHosts)}
		}
		for range rep {
			out = append(out, n)
		}
	}
	return out, nil
}
