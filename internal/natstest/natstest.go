// Package natstest runs real NATS servers with JetStream for tests: a
// cluster of several nodes, on loopback ports, each with its store in a
// directory of the test's, that a test can stop and start again node by
// node — in the test's process (NewCluster) or each node a nats-server
// process (NewProcessCluster), out of reach of the race detector's cost
// and killed as a process is.
package natstest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/async-emission/auditor/internal/testlog"
)

// Cluster is a NATS cluster with JetStream.
type Cluster struct {
	t     testing.TB
	name  string
	bin   string // "": nodes in this process
	opts  []*server.Options
	nodes []*server.Server // in this process; nil while stopped
	procs []*exec.Cmd      // as processes; nil while stopped
	logs  []*testlog.Buffer
}

// NewCluster starts an n-node cluster (n ≥ 1; one node is a plain
// server) in this process and waits until JetStream answers. The nodes
// are shut down when the test ends.
func NewCluster(t testing.TB, n int) *Cluster {
	return newCluster(t, n, "")
}

// NewProcessCluster starts an n-node cluster, each node a nats-server
// process (Binary builds it), and waits until JetStream answers. The
// processes are killed when the test ends.
func NewProcessCluster(t testing.TB, n int) *Cluster {
	return newCluster(t, n, Binary(t))
}

func newCluster(t testing.TB, n int, bin string) *Cluster {
	t.Helper()
	c := &Cluster{t: t, name: fmt.Sprintf("C%d", time.Now().UnixNano()%100000), bin: bin}
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
		c.logs = append(c.logs, &testlog.Buffer{})
	}
	c.nodes, c.procs = make([]*server.Server, n), make([]*exec.Cmd, n)
	for i := range n {
		c.Start(i)
	}
	t.Cleanup(c.Shutdown)
	c.WaitReady(60 * time.Second)
	return c
}

// Start starts node i (stopped, or not yet started) with its store as it
// was.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.bin != "" {
		c.startProcess(i)
		return
	}
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

func (c *Cluster) startProcess(i int) {
	if c.procs[i] != nil {
		return
	}
	o := c.opts[i]
	args := []string{"-n", o.ServerName, "-a", o.Host, "-p", strconv.Itoa(o.Port), "-js", "-sd", o.StoreDir}
	if len(c.opts) > 1 {
		var routes []string
		for _, r := range o.Routes {
			routes = append(routes, r.String())
		}
		args = append(args, "--cluster_name", c.name, "--cluster", fmt.Sprintf("nats://%s:%d", o.Cluster.Host, o.Cluster.Port),
			"--routes", strings.Join(routes, ","))
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = c.logs[i], c.logs[i]
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("node %d: %v", i+1, err)
	}
	c.procs[i] = cmd
	addr := net.JoinHostPort(o.Host, strconv.Itoa(o.Port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("node %d does not listen on %s: %v\n%s", i+1, addr, err, c.logs[i])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops node i: a process is killed (SIGKILL), a node in this
// process shut down.
func (c *Cluster) Stop(i int) {
	if p := c.procs[i]; p != nil {
		p.Process.Signal(syscall.SIGKILL) //nolint:errcheck // it may have exited
		p.Wait()                          //nolint:errcheck // killed
		c.procs[i] = nil
	}
	if s := c.nodes[i]; s != nil {
		s.Shutdown()
		s.WaitForShutdown()
		c.nodes[i] = nil
	}
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for i := range c.opts {
		c.Stop(i)
	}
}

// WaitReady waits until JetStream answers on every running node: a
// cluster has elected its meta leader.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for i, u := range c.URLs() {
		if c.nodes[i] == nil && c.procs[i] == nil {
			continue
		}
		for {
			if jetStreamAnswers(u) {
				break
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("JetStream does not answer on node %d after %s\n%s", i+1, timeout, c.logs[i])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func jetStreamAnswers(url string) bool {
	nc, err := nats.Connect(url, nats.Timeout(time.Second))
	if err != nil {
		return false
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err == nil
}

// URLs are the client URLs of every node, running or not.
func (c *Cluster) URLs() []string {
	var out []string
	for _, o := range c.opts {
		out = append(out, "nats://"+net.JoinHostPort(o.Host, strconv.Itoa(o.Port)))
	}
	return out
}

// Len is the number of nodes.
func (c *Cluster) Len() int { return len(c.opts) }

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

var built struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// RemoveBinary removes what Binary built; TestMain calls it once the
// tests are done.
func RemoveBinary() {
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
}

// Binary builds nats-server, the version go.mod names, once per test
// binary, and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "nats-server-bin-"); built.err != nil {
			return
		}
		built.path = filepath.Join(built.dir, "nats-server")
		if out, err := exec.Command("go", "build", "-o", built.path, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("%w\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatalf("build nats-server: %v", built.err)
	}
	return built.path
}
