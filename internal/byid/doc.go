// Package byid reads the keys of many ids from etcd at once: one Txn of
// reads for as many ids as etcd takes, rather than a request per id. The
// coordinator reads the records of the transactions in flight this way,
// and the console the records of a list page.
//
// etcd refuses a Txn of more operations than its --max-txn-ops (128 by
// default, and an operator may lower it); Read starts at the default and
// halves while etcd refuses, so it works against any limit.
package byid
