package e2e

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
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

type cpuSample struct {
	self, postgres, vault time.Duration
	// machine: every CPU's busy and total time (/proc/stat), whoever
	// used it (other engineers' builds and tests included).
	machineBusy, machineTotal float64
	// sched: the Go scheduler's latencies so far (how long runnable
	// goroutines of this process waited for a P).
	sched *metrics.Float64Histogram
	at    time.Time
}

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
	s := cpuSample{at: time.Now()}
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
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		for i, f := range strings.Fields(line)[1:] {
			v, _ := strconv.ParseFloat(f, 64)
			s.machineTotal += v
			if i != 3 && i != 4 { // idle, iowait
				s.machineBusy += v
			}
		}
	}
	ms := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(ms)
	if ms[0].Value.Kind() == metrics.KindFloat64Histogram {
		s.sched = ms[0].Value.Float64Histogram()
	}
	return s
}

// machineLoad formats how busy the whole machine was between a and b (the
// share of all CPUs), and the Go scheduler's latency percentiles of this
// process meanwhile.
func machineLoad(a, b cpuSample) string {
	busy := 0.0
	if t := b.machineTotal - a.machineTotal; t > 0 {
		busy = (b.machineBusy - a.machineBusy) / t
	}
	// Cores in use on average: the whole machine's, and this benchmark's
	// (this process, Postgres, Vault); the rest is everything else that
	// ran meanwhile (other engineers' builds and tests).
	wall := b.at.Sub(a.at).Seconds()
	cores := float64(runtime.NumCPU())
	ours := (b.self - a.self + b.postgres - a.postgres + b.vault - a.vault).Seconds() / wall
	out := fmt.Sprintf("machine %.0f%% busy: %.2f of %.0f cores, %.2f of them this benchmark's, %.2f others'",
		busy*100, busy*cores, cores, ours, max(busy*cores-ours, 0))
	if a.sched == nil || b.sched == nil || len(a.sched.Counts) != len(b.sched.Counts) {
		return out
	}
	var total uint64
	d := make([]uint64, len(b.sched.Counts))
	for i := range d {
		d[i] = b.sched.Counts[i] - a.sched.Counts[i]
		total += d[i]
	}
	q := func(p float64) float64 {
		var n uint64
		for i, c := range d {
			n += c
			if float64(n) >= p*float64(total) {
				return b.sched.Buckets[i+1]
			}
		}
		return 0
	}
	var sum float64
	for i, c := range d {
		lo, hi := b.sched.Buckets[i], b.sched.Buckets[i+1]
		if math.IsInf(hi, 1) {
			hi = lo
		}
		if math.IsInf(lo, -1) {
			lo = 0
		}
		sum += float64(c) * (lo + hi) / 2
	}
	if total == 0 {
		return out
	}
	return out + fmt.Sprintf("; goroutine run-queue wait (scheduler latency): mean %.2f ms, p50 <%.2f ms, p99 <%.2f ms over %d waits",
		sum/float64(total)*1e3, q(0.5)*1e3, q(0.99)*1e3, total)
}

// perCheck formats the CPU used between a and b per check.
func perCheck(a, b cpuSample, n int) string {
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 / float64(n) }
	return fmt.Sprintf("CPU per check: this process (dzconnect + msftsim) %.2f ms, postgres %.2f ms, vault %.2f ms, total %.2f ms",
		ms(b.self-a.self), ms(b.postgres-a.postgres), ms(b.vault-a.vault),
		ms(b.self-a.self+b.postgres-a.postgres+b.vault-a.vault))
}
