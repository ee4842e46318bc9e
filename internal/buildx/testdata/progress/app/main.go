// Command app is the program the fixture builds run in their RUN steps
// (record.sh cross-compiles it into the build context): it prints each
// argument on a line of its own, to stderr for arguments after -stderr, and
// exits with the code given by -exit.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	code := flag.Int("exit", 0, "exit code")
	flag.Parse()
	out := os.Stdout
	for _, a := range flag.Args() {
		if a == "-stderr" {
			out = os.Stderr
			continue
		}
		fmt.Fprintln(out, a)
	}
	os.Exit(*code)
}
