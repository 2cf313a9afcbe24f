package spare

import "sync"

// Pool keeps up to a fixed number of goroutines. Go hands a function to
// one of them that is idle, or starts one; beyond the pool's size a
// function gets a goroutine of its own, as with a go statement, so no
// function ever waits for another. Close stops the idle goroutines.
type Pool struct {
	work chan func() // unbuffered: a send succeeds only if a goroutine is idle
	stop chan struct{}
	wg   sync.WaitGroup

	mu   sync.Mutex
	size int // how many goroutines to keep
	kept int // goroutines kept so far
	done bool
}

// New returns a pool that keeps up to size goroutines.
func New(size int) *Pool {
	return &Pool{work: make(chan func()), stop: make(chan struct{}), size: size}
}

// Go runs f on a goroutine: an idle one of the pool's, a new one the pool
// keeps, or, when the pool is full, one that ends with f. Go never blocks
// on f. It must not be called after Close.
func (p *Pool) Go(f func()) {
	select {
	case p.work <- f:
		return
	default:
	}
	p.mu.Lock()
	keep := p.kept < p.size && !p.done
	if keep {
		p.kept++
	}
	p.wg.Add(1)
	p.mu.Unlock()
	if !keep {
		go func() {
			defer p.wg.Done()
			f()
		}()
		return
	}
	go p.keep(f)
}

func (p *Pool) keep(f func()) {
	defer p.wg.Done()
	for {
		f()
		select {
		case f = <-p.work:
		case <-p.stop:
			return
		}
	}
}

// Close lets the idle goroutines end and waits for every goroutine the
// pool started, including those still running a function.
func (p *Pool) Close() {
	p.mu.Lock()
	if !p.done {
		p.done = true
		close(p.stop)
	}
	p.mu.Unlock()
	p.wg.Wait()
}
