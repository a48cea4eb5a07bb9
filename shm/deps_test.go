package shm

import (
	"go/build"
	"strings"
	"testing"
)

// shm is a leaf: the standard library and x/sys/unix only.
func TestDeps(t *testing.T) {
	for _, goos := range []string{"linux", "darwin", "windows"} {
		ctx := build.Default
		ctx.GOOS = goos
		pkg, err := ctx.ImportDir(".", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range pkg.Imports {
			first, _, _ := strings.Cut(imp, "/")
			if strings.Contains(first, ".") && imp != "golang.org/x/sys/unix" {
				t.Errorf("GOOS=%s: shm imports %s", goos, imp)
			}
		}
	}
}
