// Go anchors for make bench: one program, built once per run by bench.c
// (go build into a temporary directory) and run as `anchors NAME [ARGS]`.
// Each benchmark prints its figures as numbers on one line, space-separated,
// for bench.c to read; a failed check exits non-zero, which fails the run.
//
// As node/common.js: each benchmark runs once to warm up, then three times,
// and the least value of each figure is printed. Every anchor runs with
// GOMAXPROCS=1 (pact runs its tasks on one thread) unless its figure says
// otherwise.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

const (
	warmup = 1
	runs   = 3
)

var anchors = map[string]func(args []string){
	"switch":         benchSwitch,
	"pingpong":       benchPingpong,
	"suspended":      benchSuspended,
	"suspended-once": suspendedOnce,
	"group-spawn":    benchGroupSpawn,
	"http-server":    httpServer,
	"fetch-get":      benchFetchGet,
}

func main() {
	if len(os.Args) < 2 || anchors[os.Args[1]] == nil {
		fail("usage: anchors switch|pingpong|suspended|group-spawn|http-server|fetch-get [ARGS]")
	}
	runtime.GOMAXPROCS(1)
	anchors[os.Args[1]](os.Args[2:])
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "go anchors: "+format+"\n", args...)
	os.Exit(1)
}

// bestOf runs run warmup times unmeasured, then runs times, and returns the
// least value of each figure.
func bestOf(run func() []float64) []float64 {
	for i := 0; i < warmup; i++ {
		run()
	}
	var best []float64
	for i := 0; i < runs; i++ {
		figs := run()
		if best == nil {
			best = figs
			continue
		}
		for f := range figs {
			if figs[f] < best[f] {
				best[f] = figs[f]
			}
		}
	}
	return best
}

func printFigs(figs []float64) {
	s := make([]string, len(figs))
	for i, f := range figs {
		s[i] = strconv.FormatFloat(f, 'f', 3, 64)
	}
	fmt.Println(strings.Join(s, " "))
}

// nsPer is the wall time since t0 in ns, divided by n.
func nsPer(t0 time.Time, n int) float64 {
	return float64(time.Since(t0).Nanoseconds()) / float64(n)
}

// intArg is args[i] as a positive int.
func intArg(args []string, i int) int {
	if len(args) <= i {
		fail("missing argument %d", i+1)
	}
	n, err := strconv.Atoi(args[i])
	if err != nil || n <= 0 {
		fail("bad count %q", args[i])
	}
	return n
}
