package main

// group.spawn anchor: errgroup's pattern with the standard library alone
// (golang.org/x/sync is not in Debian's Go): N goroutines that return at
// once, a sync.WaitGroup, the first error kept under a sync.Once. Prints
// wall ns per child from the first spawn to Wait's return, GOMAXPROCS=1.

import (
	"sync"
	"time"
)

const groupN = 100000

func groupSpawnRun() []float64 {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	ran := make([]int32, groupN)
	t0 := time.Now()
	for i := 0; i < groupN; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			ran[i] = 1
			var err error
			if err != nil {
				once.Do(func() { first = err })
			}
		}(i)
	}
	wg.Wait()
	ns := nsPer(t0, groupN)
	for i := range ran {
		if ran[i] != 1 {
			fail("group-spawn: child %d did not run", i)
		}
	}
	if first != nil {
		fail("group-spawn: %v", first)
	}
	return []float64{ns}
}

func benchGroupSpawn(args []string) {
	printFigs(bestOf(groupSpawnRun))
}
