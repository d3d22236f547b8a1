package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// replica is one `stagecoach serve` slot: a listen address that outlives its processes, so
// the front keeps sending to the slot while it is restarted.
type replica struct {
	w    *world
	n    int
	addr string // 127.0.0.1:port, the configuration's listen address for this slot

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when the current process has ended
	killed bool          // the current process was killed by the harness
	ready  *exec.Cmd     // the last process seen listening
	up     atomic.Bool   // listening: the front sends to it
}

// startReplicas starts every replica and waits until each listens.
func (w *world) startReplicas(ctx context.Context) error {
	for i := range w.o.Replicas {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("chaos: %w", err)
		}
		r := &replica{w: w, n: i, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		w.reps = append(w.reps, r)
		w.fr.add(r)
	}
	if err := w.fr.listen(); err != nil {
		return err
	}
	w.gh.SetWebhook(w.fr.url+"/webhook", w.fr.secret)
	for _, r := range w.reps {
		if err := r.start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// allUp waits until every replica listens.
func (w *world) allUp(ctx context.Context) error {
	for _, r := range w.reps {
		if err := r.waitUp(ctx); err != nil {
			return err
		}
	}
	return nil
}

// start runs a new process in the slot and waits until it listens. A process that ends by
// itself is counted and started again: replicas are supposed to survive everything here.
func (r *replica) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(r.w.o.Dir, fmt.Sprintf("replica-%d.log", r.n)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("chaos: %w", err)
	}
	defer logf.Close() // the child has its own copy
	cmd := exec.Command(r.w.o.Binary, "serve", "--config", r.w.cfg, "--listen", r.addr)
	cmd.Env = r.w.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The replicas die with the harness (Pdeathsig) and never see a terminal's Ctrl-C first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	exited := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		// Pdeathsig follows the thread that forked the child: keep that thread for the child's life.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		r.mu.Lock()
		r.cmd, r.exited, r.killed = cmd, exited, false
		r.mu.Unlock()
		started <- nil
		_ = cmd.Wait()
		// Unlocked, not ended with the goroutine: Go ends the thread of a goroutine that exits
		// locked, and this thread may have forked other children before (the control plane's
		// components), whose Pdeathsig would then kill them.
		runtime.UnlockOSThread()
		close(exited)
		r.mu.Lock()
		byItself := !r.killed && r.cmd == cmd && !r.w.closing.Load()
		wasUp := r.ready == cmd
		r.mu.Unlock()
		if !byItself {
			return
		}
		// As a kubelet would: start it again, after a short back-off. A process that ends
		// before it listens (its store unreachable at start) is what a supervisor is for; one
		// that ends after it served is a crash, and counts against the invariants.
		r.up.Store(false)
		r.w.mu.Lock()
		if wasUp {
			r.w.exits++
		} else {
			r.w.startFailures++
		}
		r.w.mu.Unlock()
		r.w.logf("chaos: replica %d (pid %d) ended by itself (%v, after listening: %v); starting it again", r.n, cmd.Process.Pid, cmd.ProcessState, wasUp)
		go func() {
			wait(context.Background(), 250*time.Millisecond)
			_ = r.start(context.Background())
		}()
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("chaos: starting replica %d: %w", r.n, err)
	}
	return r.waitUp(ctx)
}

// waitUp waits until the slot's process accepts connections on its listen address.
func (r *replica) waitUp(ctx context.Context) error {
	deadline := time.Now().Add(time.Minute)
	var ended <-chan struct{} // a process seen ending; the exit handler starts the next
	for {
		r.mu.Lock()
		exited := r.exited
		r.mu.Unlock()
		if exited == ended {
			exited = nil
		}
		if c, err := net.DialTimeout("tcp", r.addr, time.Second); err == nil {
			c.Close()
			r.mu.Lock()
			r.ready = r.cmd
			r.mu.Unlock()
			r.up.Store(true)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: replica %d does not listen on %s after a minute (see replica-%d.log)", r.n, r.addr, r.n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			ended = exited // it ended while starting; the exit handler runs another
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL to the slot's process, waits until it is gone and returns its pid.
func (r *replica) kill() int {
	r.up.Store(false)
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.killed = true
	r.mu.Unlock()
	if cmd == nil {
		return 0
	}
	_ = cmd.Process.Kill()
	<-exited
	return cmd.Process.Pid
}

// stop kills the slot's process for good.
func (r *replica) stop() {
	r.kill()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// front spreads GitHub's deliveries over the replicas, round robin, as a load balancer in
// front of a Deployment's pods does; a replica known to be down is skipped (its endpoint was
// removed), and a delivery its replica never answered is answered 502, which GitHub shows as a
// failed delivery.
type front struct {
	secret []byte
	url    string
	srv    *http.Server
	client *http.Client

	mu   sync.Mutex
	reps []*replica
	next int
}

func newFront(secret []byte) *front {
	f := &front{secret: secret, client: &http.Client{Timeout: 15 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true}}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.forward), ReadHeaderTimeout: 5 * time.Second}
	return f
}

func (f *front) add(r *replica) { f.mu.Lock(); f.reps = append(f.reps, r); f.mu.Unlock() }

func (f *front) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("chaos: the front: %w", err)
	}
	f.url = "http://" + ln.Addr().String()
	go func() { _ = f.srv.Serve(ln) }()
	return nil
}

func (f *front) close() { _ = f.srv.Close() }

// pick is the next replica that is up, or nil.
func (f *front) pick() *replica {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range f.reps {
		r := f.reps[f.next%len(f.reps)]
		f.next++
		if r.up.Load() {
			return r
		}
	}
	return nil
}

func (f *front) forward(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r := f.pick()
	if r == nil {
		http.Error(w, "no replica is up", http.StatusBadGateway)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, "http://"+r.addr+req.URL.Path, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	resp, err := f.client.Do(out)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			http.Error(w, "replica timed out", http.StatusGatewayTimeout)
			return
		}
		http.Error(w, "replica did not answer: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
