// Command gateway forwards TCP connections to a unix socket. In the runner
// emulation it runs as a service container on the job's network, so the
// action's container reaches a fake of GitHub's API that the test serves on
// the host behind a unix socket mounted into the gateway: no container
// talks to an address of the host.
//
//	gateway -listen :80 -socket /sock/api.sock
package main

import (
	"flag"
	"log"
	"net"

	"github.com/barde/phialo-image-action/internal/runneremu"
)

func main() {
	listen := flag.String("listen", ":80", "TCP address to listen on")
	socket := flag.String("socket", "/sock/api.sock", "unix socket to forward to")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listening on %s: %v", *listen, err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			log.Fatalf("accepting: %v", err)
		}
		go forward(c, *socket)
	}
}

func forward(c net.Conn, socket string) {
	defer c.Close()
	u, err := net.Dial("unix", socket)
	if err != nil {
		log.Printf("dialing %s: %v", socket, err)
		return
	}
	defer u.Close()
	runneremu.Pipe(c, u)
}
