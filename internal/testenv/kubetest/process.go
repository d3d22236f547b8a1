package kubetest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// keepMarker, in a cluster directory, keeps it from removeStale (STAGECOACH_KUBETEST_KEEP).
const keepMarker = "KEEP"

// stopGrace is how long a component may take to exit on SIGTERM before it is killed.
const stopGrace = 10 * time.Second

// proc is one running component.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited; err is set by then
	err  error
}

// run starts one component, its output going to <name>.log in the cluster directory.
func (c *Cluster) run(bin, name string, args ...string) error {
	logf, err := os.Create(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return fmt.Errorf("creating the log of %s: %w", name, err)
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// If the test binary dies without running Main (a go test timeout, a crash), the
		// kernel kills the component too. Pdeathsig follows the thread that started the
		// child; Go only ends threads of goroutines that exit locked to them, which tests
		// do not do.
		Pdeathsig: syscall.SIGKILL,
		// Its own process group, so a ^C for go test reaches only the test binary, which
		// then stops the components in order.
		Setpgid: true,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// exited reports a component that has already exited, with the end of its log. A component
// that could not bind its port is reported as errPortTaken, so start can try other ports.
func (c *Cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			tail := c.logTail(p.name, 2000)
			err := fmt.Errorf("%s exited: %v\n%s", p.name, p.err, tail)
			if strings.Contains(tail, "address already in use") {
				return fmt.Errorf("%w: %w", errPortTaken, err)
			}
			return err
		default:
		}
	}
	return nil
}

// stop ends every component in reverse start order, so etcd goes last (the apiserver hangs
// on SIGTERM once etcd is gone), then removes the cluster's directories.
func (c *Cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopGrace):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	c.procs = nil
	if c.etcdData != "" {
		_ = os.RemoveAll(c.etcdData)
	}
	if c.keep || os.Getenv("STAGECOACH_KUBETEST_KEEP") != "" {
		_ = os.WriteFile(filepath.Join(c.dir, keepMarker), nil, 0o600)
		fmt.Fprintln(os.Stderr, "kubetest: component logs and kubeconfig kept in", c.dir)
		return
	}
	_ = os.RemoveAll(c.dir)
}

func (c *Cluster) logTail(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(c.dir, name+".log"))
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// alive reports whether a process with this pid exists (EPERM: it does, owned by another user).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
