package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concord-tx/concord/cmd/demo-participant/internal/bank"
)

// cluster is a deployment of real processes: the coord binary on its
// embedded etcd, and banks run from the demo-participant binary.
type cluster struct {
	t         *testing.T
	demo      string
	etcd      string // client endpoint, for the banks
	coordURL  string
	coordProc *process
	hc        *http.Client
	dir       string
	banks     map[string]*bankProcess
	// env, when set, is the environment added to each process's, by its
	// name ("coord", "bank-a").
	env func(name string) []string
}

// bankProcess is one bank: its flags stay the same across restarts.
type bankProcess struct {
	name, db, listen, url string
	store                 string // --store, if not the bbolt file db
	proc                  *process
}

// leaseTTL is the banks' and the coordinator's: short, so that a killed
// bank's registration expires soon, but not so short that keepalives miss
// it on a loaded machine.
const leaseTTL = "3s"

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterEnv(t, nil)
}

// newClusterEnv is newCluster with env adding to each process's
// environment.
func newClusterEnv(t *testing.T, env func(name string) []string) *cluster {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &cluster{
		t:     t,
		demo:  demoBinary(t),
		hc:    &http.Client{Transport: tr, Timeout: 30 * time.Second},
		dir:   t.TempDir(),
		banks: make(map[string]*bankProcess),
		env:   env,
	}
	coord, err := coordBinary()
	if err != nil {
		t.Fatal(err)
	}
	c.startCoord(coord)
	return c
}

func (c *cluster) startCoord(bin string) {
	c.t.Helper()
	clientURL := "http://" + freeAddr(c.t)
	listen := freeAddr(c.t)
	c.coordProc = startProcessEnv(c.t, "coord", bin, c.procEnv("coord"), "serve",
		"--listen", listen,
		"--embedded-client-url", clientURL,
		"--embedded-peer-url", "http://"+freeAddr(c.t),
		"--data-dir", filepath.Join(c.dir, "etcd"),
		"--lease-ttl", leaseTTL,
	)
	c.etcd, c.coordURL = clientURL, "http://"+listen
	c.waitHealthy(c.coordURL+"/healthz", 30*time.Second)
}

// startBank starts bank name, or restarts it with the same store and
// address, and waits until it is registered and caught up.
func (c *cluster) startBank(name, accounts string, extra ...string) *bankProcess {
	c.t.Helper()
	b := c.banks[name]
	if b == nil {
		listen := freeAddr(c.t)
		b = &bankProcess{name: name, db: filepath.Join(c.dir, name+".db"), listen: listen, url: "http://" + listen}
		c.banks[name] = b
	}
	where := []string{"--db", b.db}
	if b.store != "" {
		where = []string{"--store", b.store}
	}
	args := append(append([]string{"serve",
		"--name", name,
		"--etcd", c.etcd,
	}, where...),
		"--listen", b.listen,
		"--accounts", accounts,
		"--lease-ttl", leaseTTL,
	)
	args = append(args, extra...)
	b.proc = startProcessEnv(c.t, name, c.demo, c.procEnv(name), args...)
	c.waitHealthy(b.url+"/healthz", 30*time.Second)
	return b
}

func (c *cluster) procEnv(name string) []string {
	if c.env == nil {
		return nil
	}
	return c.env(name)
}

// startBankOn starts bank name on store (a --store value) the first
// time; later calls, and startBank, restart it on the same store.
func (c *cluster) startBankOn(name, store, accounts string, extra ...string) *bankProcess {
	c.t.Helper()
	if c.banks[name] == nil {
		listen := freeAddr(c.t)
		c.banks[name] = &bankProcess{name: name, store: store, listen: listen, url: "http://" + listen}
	}
	return c.startBank(name, accounts, extra...)
}

// banksFlag is the --banks value naming every bank's address.
func (c *cluster) banksFlag() string {
	var parts []string
	for name, b := range c.banks {
		parts = append(parts, name+"="+b.url)
	}
	return strings.Join(parts, ",")
}

// transfer runs the transfer command against the coordinator.
func (c *cluster) transfer(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	return runCommand(c.t, 2*time.Minute, c.demo, append([]string{"transfer", "--coord", c.coordURL}, args...)...)
}

// waitHealthy waits for url to answer 200.
func (c *cluster) waitHealthy(url string, timeout time.Duration) {
	c.t.Helper()
	waitFor(c.t, timeout, func() (bool, string) {
		code, body, err := c.get(url)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK, fmt.Sprintf("GET %s: %d %s", url, code, body)
	})
}

func (c *cluster) get(url string) (int, string, error) {
	resp, err := c.hc.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func (c *cluster) getJSON(url string, v any) {
	c.t.Helper()
	code, body, err := c.get(url)
	if err != nil || code != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s %v", url, code, body, err)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", url, err, body)
	}
}

// accounts is the bank's GET /accounts.
func (c *cluster) accounts(name string) map[string]bank.Account {
	c.t.Helper()
	var out map[string]bank.Account
	c.getJSON(c.banks[name].url+"/accounts", &out)
	return out
}

// applied is the bank's GET /applied.
func (c *cluster) applied(name string) map[string]string {
	c.t.Helper()
	var out map[string]string
	c.getJSON(c.banks[name].url+"/applied", &out)
	return out
}

// txStatus is what the coordinator's GET /v1/transactions/{id} says.
type txStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Reason   string `json:"reason"`
	Branches []struct {
		Participant string `json:"participant"`
		Acked       bool   `json:"acked"`
	} `json:"branches"`
}

func (s txStatus) acked(participant string) bool {
	for _, b := range s.Branches {
		if b.Participant == participant {
			return b.Acked
		}
	}
	return false
}

func (c *cluster) tx(id string) txStatus {
	c.t.Helper()
	var s txStatus
	c.getJSON(c.coordURL+"/v1/transactions/"+id, &s)
	return s
}
