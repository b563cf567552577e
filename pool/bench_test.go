package pool_test

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/pgpoolx/pgpoolx/internal/pgcluster"
	"github.com/pgpoolx/pgpoolx/pool"
)

// BenchmarkAcquireRelease measures handing server connections out and
// taking them back under contention: b.RunParallel goroutines (parallelism
// × GOMAXPROCS of them) share a pool smaller or larger than their number.
// Connections are dialed before the timer starts, so this is the pool's
// own cost: its lock, the waiter queue, and the check that an idle
// connection's socket is still quiet. It needs PostgreSQL (the pool only
// holds real server connections) and skips without it, or fails in CI.
func BenchmarkAcquireRelease(b *testing.B) {
	cluster, err := pgcluster.Start(b.Context(), pgcluster.Options{})
	if err != nil {
		pgcluster.SkipOrFail(b, err)
	}
	defer cluster.Stop()

	for _, bb := range []struct{ size, parallelism int }{
		{20, 8},   // more connections than goroutines: nobody waits
		{4, 8},    // every goroutine queues for a connection now and then
		{20, 128}, // pgbench's 256 clients on a pool of 20
	} {
		b.Run(fmt.Sprintf("pool%d_parallelism%d", bb.size, bb.parallelism), func(b *testing.B) {
			p := pool.New(pool.Options{
				Host: cluster.Host(), Port: cluster.Port(), DBName: "postgres", User: "postgres",
				Size: bb.size, ConnectTimeout: 10 * time.Second, AcquireTimeout: time.Minute,
				StatementCacheSize: 100,
			}, zap.NewNop())
			defer p.Close()
			var warm []*pool.Conn
			for range bb.size {
				c, err := p.Acquire(b.Context())
				if err != nil {
					b.Fatal(err)
				}
				warm = append(warm, c)
			}
			for _, c := range warm {
				p.Release(c)
			}

			b.ReportAllocs()
			b.SetParallelism(bb.parallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c, err := p.Acquire(b.Context())
					if err != nil {
						b.Error(err)
						return
					}
					p.Release(c)
				}
			})
		})
	}
}
