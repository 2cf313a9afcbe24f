package freeport

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

func TestAddrsDistinctBindableOutsideEphemeralRange(t *testing.T) {
	lo, hi := candidates()
	seen := map[string]bool{}
	for range 20 {
		addrs, err := Addrs(5)
		if err != nil {
			t.Fatal(err)
		}
		if len(addrs) != 5 {
			t.Fatalf("got %d addresses, want 5", len(addrs))
		}
		for _, a := range addrs {
			if seen[a] {
				t.Fatalf("%s handed out twice", a)
			}
			seen[a] = true
			_, p, err := net.SplitHostPort(a)
			if err != nil {
				t.Fatal(err)
			}
			port, _ := strconv.Atoi(p)
			if port < lo || port >= hi {
				t.Fatalf("port %d outside [%d, %d)", port, lo, hi)
			}
			l, err := net.Listen("tcp", a)
			if err != nil {
				t.Fatalf("%s not bindable: %v", a, err)
			}
			l.Close()
		}
	}
}

// TestOtherProcessSkipsReservedPorts runs this test binary as a second
// process that takes ports and holds them; this process must see them as
// reserved, and free again once the other has exited.
func TestOtherProcessSkipsReservedPorts(t *testing.T) {
	if os.Getenv("FREEPORT_CHILD") != "" {
		addrs, err := Addrs(3)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println(strings.Join(addrs, " "))
		io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		os.Exit(0)
	}
	if locks == nil {
		t.Skip("no lock file on this system")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestOtherProcessSkipsReservedPorts$")
	cmd.Env = append(os.Environ(), "FREEPORT_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var ports []int
	for _, a := range strings.Fields(line) {
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatalf("child said %q: %v", line, err)
		}
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	if len(ports) != 3 {
		t.Fatalf("child said %q, want 3 addresses", line)
	}
	for _, p := range ports {
		if reserve(p) {
			t.Errorf("port %d reserved by the child process was reserved here too", p)
		}
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	for _, p := range ports {
		if !reserve(p) {
			t.Errorf("port %d still reserved after the child exited", p)
		}
	}
}
