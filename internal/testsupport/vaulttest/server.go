package vaulttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// VaultVersion is the Vault release scripts/ensure-vault.sh builds.
const VaultVersion = "1.21.0"

// devServer is a `vault server -dev` started by this process. Its storage is in
// memory: stopping it discards everything.
type devServer struct {
	dir   string // temporary directory holding vault.log
	addr  string
	token string
	cmd   *exec.Cmd
	done  chan struct{} // closed when the process has exited
}

// vaultBinary finds the vault binary: DZCONNECT_VAULT_BIN, `vault` on PATH, or the
// build of scripts/ensure-vault.sh.
func vaultBinary() (string, error) {
	if bin := os.Getenv(EnvVaultBin); bin != "" {
		return bin, nil
	}
	if bin, err := exec.LookPath("vault"); err == nil {
		return bin, nil
	}
	toolsDir := os.Getenv("DZ_TOOLS_DIR")
	if toolsDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		toolsDir = filepath.Join(home, ".cache", "dzconnect", "tools")
	}
	bin := filepath.Join(toolsDir, "vault-"+VaultVersion, "vault")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no vault binary: set %s, put vault on PATH, or run scripts/ensure-vault.sh (builds %s)", EnvVaultBin, bin)
	}
	return bin, nil
}

func startServer(ctx context.Context) (_ *devServer, err error) {
	bin, err := vaultBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "dzconnect-vaulttest-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	token := "dev-" + randomHex(16)
	logPath := filepath.Join(dir, "vault.log")
	for attempt := 1; ; attempt++ {
		s, err := startDev(ctx, bin, dir, logPath, token)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errExited) || attempt == 5 {
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("%w\n%s", err, tail(string(log), 40))
		}
	}
}

var errExited = errors.New("vault exited during start-up")

func startDev(ctx context.Context, bin, dir, logPath, token string) (*devServer, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	listen := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token,
		"-dev-listen-address="+listen, "-dev-no-store-token")
	cmd.Dir = dir
	cmd.Env = append(withoutVaultEnv(os.Environ()), "HOME="+dir)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid: true,
		// The dev server keeps nothing on disk: kill it if the test binary dies
		// without running teardown.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	s := &devServer{dir: dir, addr: "http://" + listen, token: token, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	if err := s.waitReady(ctx, time.Minute); err != nil {
		_ = s.stopProcess()
		return nil, err
	}
	return s, nil
}

// waitReady polls until the server is unsealed and the dev KV v2 engine at
// secret/ answers, the process exits, or the timeout passes.
func (s *devServer) waitReady(ctx context.Context, timeout time.Duration) error {
	client, err := NewClient(s.addr, s.token)
	if err != nil {
		return err
	}
	client.SetMaxRetries(0)
	client.SetClientTimeout(2 * time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		_, err := client.Logical().ReadWithContext(ctx, "secret/config")
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("vault not ready after %s: %w", timeout, err)
		case <-tick.C:
		}
	}
}

func (s *devServer) stop() error {
	err := s.stopProcess()
	return errors.Join(err, os.RemoveAll(s.dir))
}

func (s *devServer) stopProcess() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(15 * time.Second):
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	return errors.New("vault did not shut down within 15s; killed")
}

// withoutVaultEnv drops VAULT_* variables, which would otherwise configure the
// dev server (VAULT_ADDR, VAULT_TOKEN, ...).
func withoutVaultEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, "VAULT_") {
			out = append(out, kv)
		}
	}
	return out
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(s string, lines int) string {
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
