// Package console is the operator's web console of `coord serve`: pages that
// show what is in flight, what is stuck and why, and let an admin abort an
// undecided transaction safely.
//
// The pages are rendered on the server with html/template from embedded
// files; the one script (static/console.js, hand-written, no build step)
// only draws the chart and applies live updates. Every page is served with
// a Content-Security-Policy it satisfies (no inline script or style,
// script-src 'self'), and forbids framing.
//
// Live updates come from one etcd watch per Console, on the range of records
// and votes, however many pages are open: a hub decodes each event once and
// fans summaries out to the pages' server-sent-event streams through bounded
// buffers. The watch runs only while pages are open, and a minute after: a
// console nobody looks at costs etcd nothing. When it starts, it reads the
// transactions in flight, found from the inbox keys (a read that grows with
// the work in flight, not with the retention window), and the pages' streams
// open. The page then reads itself once more, for what changed while it was
// loading. The chart's numbers (begins, decisions by outcome and cause,
// latency) are counted all along from the coordinator Client's watch, which
// `coord serve` runs anyway: they cost etcd nothing and no read, and the
// chart starts when the Console does. Rebuilding them when a page opened
// meant reading every record kept for the retention window, each time. A
// page that cannot keep up is dropped (its browser reconnects and reloads)
// rather than slowing the watch, and so is every page when the watch resumes
// past a compaction and reads the transactions in flight again. A watch per
// page was rejected: its cost on etcd grows with the audience. Polling from
// the pages was rejected for the same reason. The participants and replicas
// panel is read from etcd at most once per refresh interval, only while an
// overview page is open, and shared by every such page.
//
// The transaction list is newest first, and pages with the begin revision
// of the last record shown. The Console remembers at least the newest
// 4,096 begins it has seen through the coordinator Client's watch, and
// reads the records of those a page needs by id; the first page is
// therefore as new as that watch, a moment behind etcd. Below them
// (records created before the Console started, or a long way back), and
// after a compaction cut the watch until its next change, it reads the
// records range sorted by creation revision, one bounded batch at a time:
// etcd sorts the whole range (or the id-prefix range) on its side for
// such a read, which with many transactions kept for the retention window
// takes a while, so only pages that far back pay it. Of the records, the
// console never holds more than a page. Filtered by a state not yet
// terminal, it reads those transactions from the inbox keys and sorts
// them itself.
//
// Access: with an Authenticator, a browser signs in once by pasting a token,
// which is exchanged for a random session id in an HttpOnly, SameSite=Strict
// cookie (Secure over TLS); the token stays in the server's memory and is
// checked again on every request, so a revoked credential stops working at
// once. No credential appears in a URL or a page. The read role sees; only
// admin aborts. Every state-changing form carries a per-session CSRF token
// and is refused from another origin. Without an Authenticator (a server
// that listens on loopback only) the console is open to anyone who reaches
// it, as the API is.
package console
