package main

// task.switch anchor: two goroutines on one P (GOMAXPROCS=1), each calling
// runtime.Gosched n times, so each call switches to the other. Go has no raw
// switch to call: each Gosched also goes through the scheduler (the run
// queue under its lock, schedule()), which pact's raw switch does not.
// Prints wall ns per switch (per Gosched).

import (
	"runtime"
	"sync"
	"time"
)

const switches = 500000 // Gosched calls per goroutine

func benchSwitch(args []string) {
	printFigs(bestOf(func() []float64 {
		var wg sync.WaitGroup
		var count [2]int
		wg.Add(2)
		t0 := time.Now()
		for g := 0; g < 2; g++ {
			go func(g int) {
				for i := 0; i < switches; i++ {
					count[g]++
					runtime.Gosched()
				}
				wg.Done()
			}(g)
		}
		wg.Wait()
		ns := nsPer(t0, 2*switches)
		if count[0] != switches || count[1] != switches {
			fail("switch: %d and %d of %d yields ran", count[0], count[1], switches)
		}
		return []float64{ns}
	}))
}
