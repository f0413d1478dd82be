package main

// task.pingpong anchor: two goroutines over two unbuffered channels; ping
// sends i on one and receives it back on the other, n times. Prints wall ns
// per round trip with GOMAXPROCS=1 (the figure's anchor), then with
// GOMAXPROCS at its default (the number of CPUs).

import (
	"runtime"
	"time"
)

const rounds = 200000

func pingpongRun() float64 {
	c1, c2 := make(chan int), make(chan int)
	done := make(chan int)
	go func() {
		n := 0
		for i := 0; i < rounds; i++ {
			c2 <- <-c1
			n++
		}
		done <- n
	}()
	t0 := time.Now()
	for i := 0; i < rounds; i++ {
		c1 <- i
		if v := <-c2; v != i {
			fail("pingpong: round %d got %d back", i, v)
		}
	}
	ns := nsPer(t0, rounds)
	if n := <-done; n != rounds {
		fail("pingpong: pong ran %d of %d rounds", n, rounds)
	}
	return ns
}

func benchPingpong(args []string) {
	one := bestOf(func() []float64 { return []float64{pingpongRun()} })
	runtime.GOMAXPROCS(runtime.NumCPU())
	all := bestOf(func() []float64 { return []float64{pingpongRun()} })
	printFigs([]float64{one[0], all[0]})
}
