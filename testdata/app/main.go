// Command app is the example application the end-to-end tests and the
// local run build into a multi-platform image. The image has no shell, so
// the Dockerfile's RUN steps run this program:
//
//	app stamp FILE   write the build platform and time to FILE (sleeping
//	                 $SLEEP seconds first, for tests that cancel a build)
//	app fail         print a few lines and exit 1 (a failing build step)
//	app              print a greeting (the image's entrypoint)
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "stamp":
			if s, err := strconv.Atoi(os.Getenv("SLEEP")); err == nil && s > 0 {
				fmt.Printf("sleeping %ds\n", s)
				time.Sleep(time.Duration(s) * time.Second)
			}
			stamp := fmt.Sprintf("built for %s/%s at %s\n", runtime.GOOS, runtime.GOARCH, time.Now().UTC().Format(time.RFC3339Nano))
			if err := os.WriteFile(os.Args[2], []byte(stamp), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			fmt.Print(stamp)
			return
		case "fail":
			fmt.Println("compiling the gallery")
			fmt.Println("gallery.go:12: undefined: Thumbnail")
			fmt.Fprintln(os.Stderr, "error: the gallery does not compile")
			os.Exit(1)
		}
	}
	fmt.Printf("hello from phialoastro on %s/%s\n", runtime.GOOS, runtime.GOARCH)
}
