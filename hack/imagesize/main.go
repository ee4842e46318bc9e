// Command imagesize prints the compressed size of each layer of an image in
// a registry and their total: what a job pulls.
//
//	imagesize 127.0.0.1:5000/action:size
package main

import (
	"fmt"
	"os"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: imagesize IMAGE")
		os.Exit(2)
	}
	ref, err := name.ParseReference(os.Args[1])
	if err == nil {
		err = show(ref)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "imagesize:", err)
		os.Exit(1)
	}
}

func show(ref name.Reference) error {
	img, err := remote.Image(ref)
	if err != nil {
		return fmt.Errorf("reading %q: %w", ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return fmt.Errorf("reading the manifest of %q: %w", ref, err)
	}
	var total int64
	for i, l := range m.Layers {
		fmt.Printf("layer %d: %.1f MB compressed\n", i+1, float64(l.Size)/1e6)
		total += l.Size
	}
	fmt.Printf("all %d layers: %.1f MB compressed\n", len(m.Layers), float64(total)/1e6)
	return nil
}
