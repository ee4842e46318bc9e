// Command site serves the example project's web page: the production image
// runs it; the CI and dev images build and test it.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

// page is the site's only page.
func page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>Phialo Design</title><h1>Handmade jewellery</h1>\n")
}

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8080"
	}
	http.HandleFunc("/", page)
	log.Fatal(http.ListenAndServe(addr, nil))
}
