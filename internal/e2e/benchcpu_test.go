package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// cpuMeter reads the CPU time used so far by this process (dzconnect and
// msftsim run in it), by the Postgres server (the postmaster, its live
// backends and those that exited) and by the Vault server, so that the
// benchmark can print what one check costs each of them in a sweep and in
// the bare loop. Linux only (/proc); elsewhere it reports zeros.
type cpuMeter struct {
	postmaster int
	vault      int
	tick       float64 // clock ticks per second
}

type cpuSample struct{ self, postgres, vault time.Duration }

func newCPUMeter(ctx context.Context, db *pgxpool.Pool, vaultAddr string) *cpuMeter {
	m := &cpuMeter{tick: 100}
	var backend int
	if err := db.QueryRow(ctx, `select pg_backend_pid()`).Scan(&backend); err == nil {
		if f := procStat(backend); len(f) > 4 {
			m.postmaster, _ = strconv.Atoi(f[4])
		}
	}
	port := vaultAddr[strings.LastIndexByte(vaultAddr, ':')+1:]
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		b, err := os.ReadFile(d + "/cmdline")
		if err != nil {
			continue
		}
		cmd := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cmd, "vault") && strings.Contains(cmd, "server") && strings.Contains(cmd, ":"+port) {
			m.vault, _ = strconv.Atoi(filepath.Base(d))
		}
	}
	return m
}

// procStat returns the fields of /proc/pid/stat numbered as in proc(5):
// f[4] is the parent's pid, f[14] and f[15] utime and stime, f[16] and
// f[17] those of waited-for children.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	// The fields after the name start at field 3 (the state).
	return append([]string{"", "", ""}, strings.Fields(s[i+1:])...)
}

// ticks sums fields (utime, stime[, cutime, cstime]) of pid.
func (m *cpuMeter) ticks(pid int, children bool) float64 {
	f := procStat(pid)
	if len(f) < 18 {
		return 0
	}
	var t float64
	last := 15 // utime 14, stime 15
	if children {
		last = 17 // cutime 16, cstime 17
	}
	for k := 14; k <= last; k++ {
		v, _ := strconv.ParseFloat(f[k], 64)
		t += v
	}
	return t
}

func (m *cpuMeter) sample() cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if m.postmaster > 0 {
		t := m.ticks(m.postmaster, true)
		dirs, _ := filepath.Glob("/proc/[0-9]*")
		for _, d := range dirs {
			pid, _ := strconv.Atoi(filepath.Base(d))
			if f := procStat(pid); len(f) > 4 && f[4] == strconv.Itoa(m.postmaster) {
				t += m.ticks(pid, false)
			}
		}
		s.postgres = time.Duration(t / m.tick * float64(time.Second))
	}
	if m.vault > 0 {
		s.vault = time.Duration(m.ticks(m.vault, true) / m.tick * float64(time.Second))
	}
	return s
}

// perCheck formats the CPU used between a and b per check.
func perCheck(a, b cpuSample, n int) string {
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(n) }
	return fmt.Sprintf("CPU per check: this process (dzconnect + msftsim) %.2f ms, postgres %.2f ms, vault %.2f ms, total %.2f ms",
		ms(b.self-a.self), ms(b.postgres-a.postgres), ms(b.vault-a.vault),
		ms(b.self-a.self+b.postgres-a.postgres+b.vault-a.vault))
}
