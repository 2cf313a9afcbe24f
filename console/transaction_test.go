package console_test

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/concord-tx/concord/protocol"
)

// Hostile text, as a payload and an abort reason: shown as text, never
// run.
const (
	evilPayload = `{"note":"<img id=injected src=x onerror=document.title='pwned'>"}`
	evilReason  = `<b id="xss">bold</b><script>document.title='pwned'</script>`
)

func TestBrowserTransactionAbort(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t)
	f.participant(t, "bank-a", yes)
	f.participant(t, "hold", silent) // never votes
	id := f.begin(t,
		protocol.Branch{Participant: "bank-a", Payload: []byte(evilPayload)},
		protocol.Branch{Participant: "hold", Payload: []byte(`<script>document.title='pwned'</script>`)})

	b.open(f.url, "/transactions/"+id, "#branches")
	// The page reloads when bank-a's vote comes, even one that came while
	// it loaded.
	b.waitText(`#branches tr[data-participant="bank-a"]`, "bank-a's yes vote", func(s string) bool { return strings.Contains(s, "yes") })
	if n := b.count("#branches tbody tr"); n != 2 {
		t.Fatalf("%d branches shown, want 2", n)
	}
	if got := b.text(`#branches tr[data-participant="hold"]`); !strings.Contains(got, "not voted") {
		t.Errorf("hold's branch: %q, want not voted", got)
	}
	if got := b.text(`#branches tr[data-participant="bank-a"] pre.payload`); got != evilPayload {
		t.Errorf("bank-a's payload shown as %q, want the text %q", got, evilPayload)
	}
	if got := b.text(`#branches tr[data-participant="hold"] pre.payload`); got != `<script>document.title='pwned'</script>` {
		t.Errorf("hold's payload shown as %q", got)
	}
	if n := b.count("#injected"); n != 0 {
		t.Error("the payload's HTML became an element")
	}

	b.do(chromedp.Click(chromedp.CSS("#abort")), chromedp.WaitVisible(chromedp.CSS("#confirm")))
	if got := b.text("#confirm"); !strings.Contains(got, id) {
		t.Errorf("the confirmation button says %q, want it to name %s", got, id)
	}
	if got := b.text("h1"); !strings.Contains(got, id) {
		t.Errorf("the confirmation page's title is %q, want it to name %s", got, id)
	}
	b.do(chromedp.SetValue(chromedp.CSS("#reason"), evilReason), chromedp.Click(chromedp.CSS("#confirm")), chromedp.WaitVisible(chromedp.CSS("#branches")))
	// The page reloads as the abort is applied: wait for what it shows.
	b.waitText("#state", "the page shows the abort", func(s string) bool { return s == "aborting" || s == "aborted" })
	b.waitText("#reason", "the abort reason shown as the text typed", func(s string) bool { return s == evilReason })
	b.waitText("#decided-by", "decided by an operator", func(s string) bool { return strings.Contains(s, "operator") })
	if b.count("#xss") != 0 || b.count("#abort") != 0 {
		t.Error("after the abort: the reason's HTML became an element, or the abort button is still there")
	}
	if title := eval[string](b, "document.title"); strings.Contains(title, "pwned") {
		t.Errorf("a script from the input ran: title %q", title)
	}
	tx := f.state(t, id)
	if !tx.State.Decided() || tx.State.Committed() || tx.Cause != protocol.CauseOperator || tx.Reason != evilReason {
		t.Errorf("in etcd: %v cause %q reason %q, want aborted by the operator with the reason typed", tx.State, tx.Cause, tx.Reason)
	}
}

func TestBrowserSignInAsReader(t *testing.T) {
	b := newBrowser(t)
	f := newFixture(t, withAuth())
	id := f.held(t)

	b.open(f.url, "/transactions/"+id, "#token")
	if b.count("#branches") != 0 {
		t.Fatal("the transaction is shown before sign-in")
	}
	b.do(chromedp.SendKeys(chromedp.CSS("#token"), readToken), chromedp.Click(chromedp.CSS(`form.signin button`)), chromedp.WaitVisible(chromedp.CSS("#branches")))
	if b.count("#abort") != 0 || b.count("#no-abort") != 1 {
		t.Error("a reader is offered the abort button")
	}
	page := eval[string](b, "document.documentElement.outerHTML + location.href")
	if strings.Contains(page, readToken) {
		t.Error("the token is in the page or its URL")
	}
	if cookie := eval[string](b, "document.cookie"); cookie != "" {
		t.Errorf("the page's script can read cookies %q; want the session cookie HttpOnly", cookie)
	}
	b.open(f.url, "/transactions/"+id+"/abort", "h1")
	if got := b.text("h1"); got != "Not allowed" {
		t.Errorf("a reader opening the abort page sees %q, want Not allowed", got)
	}
	if got := f.state(t, id).State; got != protocol.StatePreparing {
		t.Errorf("transaction is %v, want preparing", got)
	}
}
