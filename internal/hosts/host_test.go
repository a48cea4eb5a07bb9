package hosts

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// h is shorthand for a host in test tables.
func h(name string, slots int) Host { return Host{Name: name, Slots: slots} }

// checkErr asserts that err is an *Error from source at line whose text and
// message are as given (msg: a substring of the whole message).
func checkErr(t *testing.T, err error, source string, line int, text, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Source != source || e.Line != line || e.Text != text {
		t.Errorf("error source, line, text = %q, %d, %q; want %q, %d, %q", e.Source, e.Line, e.Text, source, line, text)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

func TestParseHostSpec(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want []Host
	}{
		{"h1", []Host{h("h1", 1)}},
		{"h1:4,h2:4", []Host{h("h1", 4), h("h2", 4)}},
		{"h1,h1,h2", []Host{h("h1", 2), h("h2", 1)}},
		{"h2,h1,h2:3", []Host{h("h2", 4), h("h1", 1)}},
		{" h1:2 , h2 ", []Host{h("h1", 2), h("h2", 1)}},
		{"10.0.0.1:2,node-01.example.org", []Host{h("10.0.0.1", 2), h("node-01.example.org", 1)}},
		{"alice@h1:3,n_2", []Host{h("alice@h1", 3), h("n_2", 1)}},
		{"H1,h1", []Host{h("H1", 1), h("h1", 1)}},
		{"h1:1048576", []Host{h("h1", MaxCount)}},
		{"h1:007", []Host{h("h1", 7)}},
	} {
		got, err := ParseHostSpec(tc.spec)
		if err != nil {
			t.Errorf("ParseHostSpec(%q): %v", tc.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseHostSpec(%q) = %v, want %v", tc.spec, got, tc.want)
		}
	}
}

func TestParseHostSpecErrors(t *testing.T) {
	for _, tc := range []struct {
		spec, text, msg string
	}{
		{"", "", "no hosts given"},
		{"  ", "  ", "no hosts given"},
		{"h1,,h2", "h1,,h2", "empty entry"},
		{"h1,", "h1,", "empty entry"},
		{",h1", ",h1", "empty entry"},
		{"h1:0", "h1:0", "slot count 0 is less than 1"},
		{"h1:", "h1:", "slot count is empty"},
		{"h1:x", "h1:x", `slot count "x" is not a whole number`},
		{"h1:*", "h1:*", `slot count "*" is not a whole number`},
		{"h1:-2", "h1:-2", `slot count "-2" is not a whole number`},
		{"h1:+2", "h1:+2", `slot count "+2" is not a whole number`},
		{"h1:2:3", "h1:2:3", `slot count "2:3" is not a whole number`},
		{"h1:1048577", "h1:1048577", "slot count 1048577 is more than 1048576"},
		{"h1:99999999999999999999", "h1:99999999999999999999", "is more than 1048576"},
		{"h1:1048576,h1", "h1", "would have 1048577 slots"},
		{":4", ":4", "empty host name"},
		{"-oProxyCommand=x", "-oProxyCommand=x", "starts with '-'"},
		{"h 1", "h 1", `the character ' '`},
		{"node[1-2]", "node[1-2]", `the character '['`},
		{"fe80::1", "fe80::1", `slot count ":1" is not a whole number`},
		{"@h1", "@h1", "is not user@host"},
		{"u@", "u@", "is not user@host"},
		{"a@b@c", "a@b@c", "is not user@host"},
		{"u@-h", "u@-h", "is not user@host"},
	} {
		_, err := ParseHostSpec(tc.spec)
		if err == nil {
			t.Errorf("ParseHostSpec(%q) succeeded", tc.spec)
			continue
		}
		checkErr(t, err, "--host", 0, tc.text, tc.msg)
	}
}

func TestErrorMessage(t *testing.T) {
	inner := errors.New("what is wrong")
	for _, tc := range []struct {
		e    Error
		want string
	}{
		{Error{Source: "--host", Text: "h1:x", Err: inner}, `--host: "h1:x": what is wrong`},
		{Error{Source: "hostfile hf", Line: 3, Text: "h slots=0", Err: inner}, `hostfile hf:3: "h slots=0": what is wrong`},
	} {
		if got := tc.e.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
		if !errors.Is(&tc.e, inner) {
			t.Errorf("errors.Is(%v, inner) = false", &tc.e)
		}
	}
}
