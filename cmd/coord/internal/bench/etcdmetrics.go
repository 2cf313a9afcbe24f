package bench

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// etcdMetrics is what the deployed benchmark reads of an etcd's
// /metrics: counters on the server's side, whoever sent the requests.
type etcdMetrics struct {
	requests       map[string]float64 // unary gRPC requests handled, by method
	watchResponses float64            // messages sent on Watch streams
	proposals      float64            // raft proposals committed
	fsyncs         float64            // WAL fsyncs
}

// scrapeEtcd reads url (an etcd's /metrics, in Prometheus' text format).
func scrapeEtcd(ctx context.Context, hc *http.Client, url string) (etcdMetrics, error) {
	m := etcdMetrics{requests: make(map[string]float64)}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return m, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return m, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	found := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		series, value := line[:i], line[i+1:]
		name, labels, _ := strings.Cut(series, "{")
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		switch name {
		case "grpc_server_handled_total":
			if label(labels, "grpc_type") == "unary" {
				m.requests[label(labels, "grpc_method")] += v
			}
		case "grpc_server_msg_sent_total":
			if label(labels, "grpc_method") == "Watch" {
				m.watchResponses += v
			}
		case "etcd_server_proposals_committed_total":
			m.proposals = v
		case "etcd_disk_wal_fsync_duration_seconds_count":
			m.fsyncs = v
		default:
			continue
		}
		found[name] = true
	}
	if err := sc.Err(); err != nil {
		return m, fmt.Errorf("GET %s: %w", url, err)
	}
	for _, name := range []string{"grpc_server_handled_total", "etcd_server_proposals_committed_total", "etcd_disk_wal_fsync_duration_seconds_count"} {
		if !found[name] {
			return m, fmt.Errorf("GET %s: no %s (is it etcd's /metrics?)", url, name)
		}
	}
	return m, nil
}

// label is the value of label name in a series' labels (`a="x",b="y"}`).
func label(labels, name string) string {
	for _, kv := range strings.Split(strings.TrimSuffix(labels, "}"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k == name {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
