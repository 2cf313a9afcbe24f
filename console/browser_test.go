package console_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/concord-tx/concord/internal/testkit/poll"
)

// browser is a headless Chromium driven by chromedp, with what the pages
// reported (CSP violations, script errors) collected.
type browser struct {
	t   *testing.T
	ctx context.Context
	mu  sync.Mutex
	log []string
}

// newBrowser starts Debian's Chromium. Without it the test is skipped,
// except in CI (CI=true), where it fails.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (CI=true): install Debian's chromium package (apt-get install chromium)")
		}
		t.Skip("install Debian's chromium package (apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses its sandbox as root
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx}
	// The first action starts the browser, which lives as long as its
	// context: no timeout on this one.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancelCtx()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.log = append(b.log, m.String())
			b.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancelCtx()
		cancelAlloc()
		<-read
		b.checkLog()
	})
	return b
}

// checkLog fails the test if a page broke its Content-Security-Policy or
// threw.
func (b *browser) checkLog() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.log {
		if strings.Contains(l, "Content Security Policy") || strings.Contains(l, "exception") {
			b.t.Errorf("browser: %s", l)
		}
	}
}

// do runs actions, each bounded.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression in the page. A page that is
// reloading has nothing to evaluate in for a moment: eval tries again.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	var v T
	poll.Until(b.t, time.Minute, "browser: evaluate "+expr, func() (bool, string) {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer cancel()
		var err error
		v, err = chromedp.Run(ctx, chromedp.Evaluate[T](expr))
		if err != nil {
			return false, err.Error()
		}
		return true, ""
	})
	return v
}

// open loads path of the console and waits until sel is visible.
func (b *browser) open(base, path, sel string) {
	b.t.Helper()
	b.do(chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
}

// text returns the text of the first element matching sel, "" if none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	return eval[string](b, fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent:""})()`, sel))
}

// count returns how many elements match sel.
func (b *browser) count(sel string) int {
	b.t.Helper()
	return eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// mark sets a value on the page's window: it survives only as long as the
// page is not reloaded.
func (b *browser) mark() { eval[chromedp.Void](b, `window.__notReloaded = true`) }

func (b *browser) notReloaded() bool { return eval[bool](b, `window.__notReloaded === true`) }

// waitText polls until sel's text satisfies ok.
func (b *browser) waitText(sel, what string, ok func(string) bool) string {
	b.t.Helper()
	var last string
	poll.Until(b.t, 30*time.Second, what, func() (bool, string) {
		if last = b.text(sel); ok(last) {
			return true, ""
		}
		return false, fmt.Sprintf("%s is %q in the page at %s:\n%s", sel, last, eval[string](b, "location.href"), eval[string](b, "document.body.innerText"))
	})
	return last
}

// screenshot saves the page as dir/name when CONSOLE_SCREENSHOTS=dir.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", filepath.Join(dir, name))
}
