// Package natstest runs real NATS servers with JetStream for tests: a
// cluster of several nodes in this process, on loopback ports, each with
// its store in a directory of the test's, that a test can stop and start
// again node by node.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a NATS cluster with JetStream, its nodes in this process.
type Cluster struct {
	t     testing.TB
	name  string
	opts  []*server.Options
	nodes []*server.Server // nil while stopped
}

// NewCluster starts an n-node cluster (n ≥ 1; one node is a plain
// server) and waits until JetStream has a meta leader. The nodes are shut
// down when the test ends.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: fmt.Sprintf("C%d", time.Now().UnixNano()%100000)}
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []string
	for _, p := range routePorts {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       clientPorts[i],
			JetStream:  true,
			StoreDir:   t.TempDir(),
			NoSigs:     true,
			NoLog:      true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: routePorts[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		c.opts = append(c.opts, o)
	}
	c.nodes = make([]*server.Server, n)
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(c.Shutdown)
	c.WaitReady(30 * time.Second)
	return c
}

// Start starts node i (stopped, or not yet started) with its store as it
// was.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.nodes[i] != nil {
		return
	}
	o := *c.opts[i]
	s, err := server.NewServer(&o)
	if err != nil {
		c.t.Fatalf("node %d: %v", i+1, err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		c.t.Fatalf("node %d did not start", i+1)
	}
	c.nodes[i] = s
}

// Stop shuts node i down and waits until it has stopped.
func (c *Cluster) Stop(i int) {
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.nodes {
		c.Stop(i)
	}
}

// WaitReady waits until every running node sees a JetStream meta leader.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ready := true
		for _, s := range c.nodes {
			if s != nil && (!s.JetStreamEnabled() || (len(c.nodes) > 1 && !hasMetaLeader(s))) {
				ready = false
			}
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the NATS cluster has no JetStream meta leader after %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hasMetaLeader(s *server.Server) bool {
	if s.JetStreamIsLeader() {
		return true
	}
	js, err := s.Jsz(&server.JSzOptions{})
	return err == nil && js.Meta != nil && js.Meta.Leader != ""
}

// URLs are the client URLs of every node, running or not.
func (c *Cluster) URLs() []string {
	var out []string
	for _, o := range c.opts {
		out = append(out, (&url.URL{Scheme: "nats", Host: net.JoinHostPort(o.Host, fmt.Sprint(o.Port))}).String())
	}
	return out
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.nodes) }

// freePorts returns n loopback TCP ports nobody listened on a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	var lns []net.Listener
	var out []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return out
}
