// Package sysres reads and raises the process resources the load tools care about: the open-file limit
// (every held stream is a file descriptor on both ends), resident memory of any process (the figure the
// memory-per-connection targets are stated in), and the CPU time the load client itself burns (so a run
// can show the client was not the bottleneck). Linux only: it reads /proc and uses getrusage.
package sysres

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// RaiseNoFile raises the soft RLIMIT_NOFILE of this process to its hard limit and returns the limits now
// in force. Go raises the soft limit itself at start since 1.19, but only for binaries that import os in
// the usual way and not when the hard limit is "unlimited"; doing it explicitly makes the figure visible.
func RaiseNoFile() (soft, hard uint64, err error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, fmt.Errorf("getrlimit nofile: %w", err)
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return lim.Cur, lim.Max, fmt.Errorf("setrlimit nofile to %d: %w", want.Max, err)
		}
		lim = want
	}
	return lim.Cur, lim.Max, nil
}

// RSS returns the resident set size in bytes of process pid (VmRSS in /proc/<pid>/status); pid 0 means
// this process.
func RSS(pid int) (int64, error) {
	path := "/proc/self/status"
	if pid > 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte("VmRSS:")) {
			continue
		}
		fields := bytes.Fields(line[len("VmRSS:"):])
		if len(fields) < 1 {
			break
		}
		kb, err := strconv.ParseInt(string(fields[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse VmRSS of %s: %w", path, err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("no VmRSS in %s", path)
}

// Usage is the CPU time and peak memory this process has used so far.
type Usage struct {
	User, System time.Duration
	MaxRSS       int64 // bytes
}

// CPU is user plus system time.
func (u Usage) CPU() time.Duration { return u.User + u.System }

// Self returns getrusage(RUSAGE_SELF).
func Self() (Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, fmt.Errorf("getrusage: %w", err)
	}
	return Usage{
		User:   time.Duration(ru.Utime.Nano()),
		System: time.Duration(ru.Stime.Nano()),
		MaxRSS: ru.Maxrss * 1024,
	}, nil
}
