package batch

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// The compares built here are the ones clientv3 builds, field for field.
func TestComparesMatchClientv3(t *testing.T) {
	for _, c := range []struct {
		name string
		ours *pb.Compare
		want clientv3.Cmp
	}{
		{"mod revision", ModRevisionIs("k", 7), clientv3.Compare(clientv3.ModRevision("k"), "=", 7)},
		{"absent", CreateRevisionIs("k", 0), clientv3.Compare(clientv3.CreateRevision("k"), "=", 0)},
		{"value", ValueIs("k", "yes"), clientv3.Compare(clientv3.Value("k"), "=", "yes")},
		{"lease", LeaseIs("k", 42), clientv3.Compare(clientv3.LeaseValue("k"), "=", clientv3.LeaseID(42))},
	} {
		if want := c.want.GetCompare(); !proto.Equal(c.ours, want) {
			t.Errorf("%s: %v, clientv3 builds %v", c.name, c.ours, want)
		}
	}
}
