// Command echo is a test rank that reports what gorun gave it: its GORUN_*
// environment, arguments, selected variables and stdin, on one line. With
// -lines N it prints N long numbered lines instead, to check that output
// from several ranks is never interleaved within a line.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	vars := flag.String("vars", "", "comma-separated variables to print")
	lines := flag.Int("lines", 0, "print this many long lines to stdout and stderr and exit")
	width := flag.Int("width", 400, "length of each -lines line")
	flag.Parse()
	rank := os.Getenv("GORUN_RANK")
	if *lines > 0 {
		out := bufio.NewWriterSize(os.Stdout, 4096)
		errOut := bufio.NewWriterSize(os.Stderr, 4096)
		fill := strings.Repeat(rank, *width)
		for i := range *lines {
			// Small buffers: lines reach gorun cut at random places.
			fmt.Fprintf(out, "rank %s line %d %s\n", rank, i, fill)
			fmt.Fprintf(errOut, "rank %s line %d %s\n", rank, i, fill)
		}
		out.Flush()
		errOut.Flush()
		return
	}
	in, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo: reading stdin:", err)
		os.Exit(1)
	}
	var b strings.Builder
	for _, k := range []string{"RANK", "SIZE", "LOCAL_RANK", "LOCAL_SIZE", "NODE", "JOB_ID"} {
		fmt.Fprintf(&b, "%s=%s ", k, os.Getenv("GORUN_"+k))
	}
	if *vars != "" {
		for k := range strings.SplitSeq(*vars, ",") {
			fmt.Fprintf(&b, "%s=%q ", k, os.Getenv(k))
		}
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(&b, "cwd=%s args=%q stdin=%q", wd, flag.Args(), in)
	fmt.Println(b.String())
}
