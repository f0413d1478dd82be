package main

// task.suspended_bytes anchor: n goroutines each blocked receiving from one
// shared channel. Prints resident bytes per goroutine: the growth of the
// resident set (/proc/self/statm) from before spawning them to when all are
// blocked, divided by n; then the channel is closed and every goroutine
// must finish.
//
// Go keeps a finished goroutine (and its stack) for reuse, so a second run
// in one process would find them made: each run is a fresh process
// (`anchors suspended-once N`), three of them, and the least is printed.

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

func rssBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fail("cannot read /proc/self/statm: %v", err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		fail("cannot parse /proc/self/statm")
	}
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		fail("cannot parse /proc/self/statm: %v", err)
	}
	return pages * float64(os.Getpagesize())
}

func suspendedOnce(args []string) {
	n := intArg(args, 0)
	gate := make(chan int)
	var ready, woke int64
	var wg sync.WaitGroup
	runtime.GC()
	before := rssBytes()
	wg.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			atomic.AddInt64(&ready, 1)
			if _, ok := <-gate; !ok {
				atomic.AddInt64(&woke, 1)
			}
			wg.Done()
		}()
	}
	// one P: each goroutine runs until it blocks before main runs again
	for atomic.LoadInt64(&ready) < int64(n) {
		runtime.Gosched()
	}
	bytes := (rssBytes() - before) / float64(n)
	close(gate)
	wg.Wait()
	if woke != int64(n) {
		fail("suspended: %d of %d goroutines woke", woke, n)
	}
	printFigs([]float64{bytes})
}

func benchSuspended(args []string) {
	n := intArg(args, 0)
	exe, err := os.Executable()
	if err != nil {
		fail("os.Executable: %v", err)
	}
	best := -1.0
	for i := 0; i < runs; i++ {
		cmd := exec.Command(exe, "suspended-once", strconv.Itoa(n))
		cmd.Stderr = os.Stderr
		out, err := cmd.Output()
		if err != nil {
			fail("suspended-once %d: %v", n, err)
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		if err != nil {
			fail("suspended-once %d printed %q", n, out)
		}
		if best < 0 || v < best {
			best = v
		}
	}
	printFigs([]float64{best})
}
