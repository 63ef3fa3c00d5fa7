package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clusterConf mirrors scripts/services.sh: a disposable cluster, durability off.
const clusterConf = `
# pgtest: disposable cluster, durability off for speed.
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
max_connections = 400
shared_buffers = 128MB
checkpoint_timeout = 30min
max_wal_size = 4GB
`

// cluster is a Postgres server started by this process.
type cluster struct {
	dir  string // temporary directory holding data/ and postgres.log
	url  string // superuser URL of the postgres database
	cmd  *exec.Cmd
	done chan struct{} // closed when the postmaster has exited
}

// startCluster runs initdb in a fresh temporary directory and starts a postmaster
// on a free port of 127.0.0.1, retrying with another port if it cannot bind.
func startCluster(ctx context.Context) (_ *cluster, err error) {
	cred, err := unprivilegedCredential()
	if err != nil {
		return nil, err
	}
	removeStaleClusters()
	dir, err := os.MkdirTemp("", clusterDirPrefix)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, "initdb", "-D", data, "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Dir = "/"
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	conf, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = conf.WriteString(clusterConf)
	if cerr := conf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}

	logPath := filepath.Join(dir, "postgres.log")
	for attempt := 1; ; attempt++ {
		c, err := startPostmaster(ctx, dir, data, logPath, cred)
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, errExited) || attempt == 5 {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%w\n%s", err, log)
		}
	}
}

var errExited = errors.New("postmaster exited during start-up")

const clusterDirPrefix = "dzconnect-pgtest-"

// removeStaleClusters deletes the directories of clusters whose test binary was
// killed before its teardown (the postmaster died with it, see Pdeathsig): those
// whose postmaster is gone, or, without a postmaster.pid, older than an hour.
func removeStaleClusters() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterDirPrefix+"*"))
	for _, dir := range dirs {
		info, err := os.Stat(dir)
		if err != nil {
			continue
		}
		pidFile, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
		if err != nil {
			if time.Since(info.ModTime()) > time.Hour {
				_ = os.RemoveAll(dir)
			}
			continue
		}
		line, _, _ := strings.Cut(string(pidFile), "\n")
		pid, err := strconv.Atoi(strings.TrimSpace(line))
		if err == nil && pid > 0 && syscall.Kill(pid, 0) == syscall.ESRCH {
			_ = os.RemoveAll(dir)
		}
	}
}

func startPostmaster(ctx context.Context, dir, data, logPath string, cred *syscall.Credential) (*cluster, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command("postgres", "-D", data, "-p", strconv.Itoa(port))
	cmd.Dir = "/"
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: cred,
		Setpgid:    true,
		// Immediate shutdown if the test binary dies without running teardown.
		Pdeathsig: syscall.SIGQUIT,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting postgres: %w", err)
	}
	c := &cluster{
		dir:  dir,
		url:  fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port),
		cmd:  cmd,
		done: make(chan struct{}),
	}
	go func() { _ = cmd.Wait(); close(c.done) }()
	if err := c.waitReady(ctx, time.Minute); err != nil {
		_ = c.stopProcess()
		return nil, err
	}
	return c, nil
}

// waitReady polls until the server accepts a connection, the postmaster exits, or
// the timeout passes.
func (c *cluster) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgx.Connect(attemptCtx, c.url)
		cancelAttempt()
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.done:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// stop shuts the server down (fast mode) and deletes its directory.
func (c *cluster) stop() error {
	err := c.stopProcess()
	return errors.Join(err, os.RemoveAll(c.dir))
}

func (c *cluster) stopProcess() error {
	// SIGINT is Postgres' "fast" shutdown: roll back sessions, exit cleanly.
	if err := c.cmd.Process.Signal(syscall.SIGINT); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	return errors.New("postgres did not shut down within 30s; killed")
}

// unprivilegedCredential returns the user to run Postgres as, which refuses to run
// as root: nil when not root, else "postgres" or a system user "dzconnect-pg"
// (created if missing), the same choice scripts/services.sh makes.
func unprivilegedCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		u, err = user.Lookup("dzconnect-pg")
	}
	if err != nil {
		out, uerr := exec.Command("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", "dzconnect-pg").CombinedOutput()
		if uerr != nil {
			return nil, fmt.Errorf("creating system user dzconnect-pg to run Postgres: %w\n%s", uerr, out)
		}
		if u, err = user.Lookup("dzconnect-pg"); err != nil {
			return nil, err
		}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process may
// take it before the server binds; callers retry on failure.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
