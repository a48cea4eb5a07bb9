package launch

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// stdinFor returns what rank reads as its standard input: Job.Stdin for
// the StdinRank, a copy of it for every rank with StdinAll, else nothing.
func (s *supervisor) stdinFor(rank int) io.Reader {
	j := s.job
	switch {
	case j.Stdin == nil || j.StdinRank == StdinNone:
		return nil
	case j.StdinRank == StdinAll:
		s.teeOnce.Do(func() { s.tee = newTee(j.Stdin, j.NP) })
		return s.tee.readers[rank]
	case j.StdinRank == rank:
		return j.Stdin
	}
	return nil
}

// tee copies one reader to n pipes. A reader that stops reading (its rank
// exited) is dropped, not waited for.
type tee struct {
	readers []io.Reader
}

func newTee(src io.Reader, n int) *tee {
	t := &tee{}
	ws := make([]*io.PipeWriter, n)
	for i := range n {
		r, w := io.Pipe()
		t.readers = append(t.readers, r)
		ws[i] = w
	}
	go func() {
		buf := make([]byte, 32<<10)
		live := n
		for live > 0 {
			k, err := src.Read(buf)
			if k > 0 {
				var wg sync.WaitGroup
				for i, w := range ws {
					if w == nil {
						continue
					}
					wg.Go(func() {
						if _, err := w.Write(buf[:k]); err != nil {
							ws[i] = nil
						}
					})
				}
				wg.Wait()
				live = 0
				for _, w := range ws {
					if w != nil {
						live++
					}
				}
			}
			if err != nil {
				break
			}
		}
		for _, w := range ws {
			if w != nil {
				w.Close()
			}
		}
	}()
	return t
}

// rankFiles is the output of rank into OutputDir/1/rank.R/{stdout,stderr}.
func (s *supervisor) rankFiles(rank int) (*output, error) {
	dir := filepath.Join(s.job.OutputDir, "1", "rank."+strconv.Itoa(rank))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("launch: --output-filename: %w", err)
	}
	var files [2]*os.File
	for i, name := range []string{"stdout", "stderr"} {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			if files[0] != nil {
				files[0].Close()
			}
			return nil, fmt.Errorf("launch: --output-filename: %w", err)
		}
		files[i] = f
		s.files = append(s.files, f)
	}
	return newOutput(files[0], files[1]), nil
}
