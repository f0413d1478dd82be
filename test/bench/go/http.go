package main

// http.hello and http.echo anchor (`anchors http-server`): net/http on
// 127.0.0.1, GOMAXPROCS=1, pinned to the server core by bench_http.c (the
// affinity of the thread that starts it). It prints its port, then serves
// `GET /` (the 12 bytes of "hello world\n") and `POST /echo` (the JSON
// body parsed with encoding/json and written back compact) until a
// `GET /exit`; `GET /cpu` answers the process's CPU time so far in ns (for
// the _cpu figures). The bench's load driver measures it; it prints no
// figure.
//
// fetch.get and fetch.get_c50 anchor (`anchors fetch-get PORT`):
// http.Client against the bench's own hello server on PORT, 5,000 GETs one
// after the other, then 20,000 with 50 goroutines at once (a Transport
// keeping 50 idle connections). Prints wall ns per request for both; every
// response's status and body is checked.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const hello = "hello world\n"

func httpServer(args []string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("http-server: %v", err)
	}
	exit := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, hello)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		var v interface{}
		if err := json.NewDecoder(r.Body).Decode(&v); err != nil {
			http.Error(w, "not JSON", http.StatusBadRequest)
			return
		}
		out, err := json.Marshal(v)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
	mux.HandleFunc("/cpu", func(w http.ResponseWriter, r *http.Request) {
		var ru syscall.Rusage // the process's CPU time so far, for _cpu
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			fail("http-server: getrusage: %v", err)
		}
		fmt.Fprint(w, (ru.Utime.Nano() + ru.Stime.Nano()))
	})
	mux.HandleFunc("/exit", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "bye")
		close(exit)
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	<-exit
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

const (
	fetchSeq   = 5000
	fetchTotal = 20000
	fetchConc  = 50
)

func fetchOne(c *http.Client, url string) {
	res, err := c.Get(url)
	if err != nil {
		fail("fetch-get: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 || string(b) != hello {
		fail("fetch-get: not the response expected: %d %q %v",
			res.StatusCode, b, err)
	}
}

func fetchRun(url string) []float64 {
	c := &http.Client{Transport: &http.Transport{
		MaxIdleConns:        fetchConc,
		MaxIdleConnsPerHost: fetchConc,
	}}
	defer c.CloseIdleConnections()
	t0 := time.Now()
	for i := 0; i < fetchSeq; i++ {
		fetchOne(c, url)
	}
	seq := nsPer(t0, fetchSeq)
	var started int64
	var wg sync.WaitGroup
	t0 = time.Now()
	for g := 0; g < fetchConc; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for atomic.AddInt64(&started, 1) <= fetchTotal {
				fetchOne(c, url)
			}
		}()
	}
	wg.Wait()
	return []float64{seq, nsPer(t0, fetchTotal)}
}

func benchFetchGet(args []string) {
	url := fmt.Sprintf("http://127.0.0.1:%d/", intArg(args, 0))
	printFigs(bestOf(func() []float64 { return fetchRun(url) }))
}
