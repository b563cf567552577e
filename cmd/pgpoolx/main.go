// Command pgpoolx is a PostgreSQL connection pooler.
//
//	pgpoolx -config FILE          run the pooler
//	pgpoolx check -config FILE    validate a configuration file
//	pgpoolx pins [FILE...|-]      report the pins in pgpoolx's JSON logs
//	pgpoolx -version              print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/pgpoolx/pgpoolx/config"
	"github.com/pgpoolx/pgpoolx/metrics"
	"github.com/pgpoolx/pgpoolx/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(os.Stderr, "pgpoolx:", err)
		}
		os.Exit(1)
	}
}

// errReported means the problem was already printed.
var errReported = errors.New("reported")

// run is the whole program; ready, if set, receives the listening address.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runWithReady(ctx, args, stdout, stderr, nil)
}

func runWithReady(ctx context.Context, args []string, stdout, stderr io.Writer, ready func(net.Addr)) error {
	if len(args) > 0 {
		switch args[0] {
		case "check":
			return check(args[1:], stdout, stderr)
		case "pins":
			return pins(args[1:], os.Stdin, stdout, stderr)
		}
	}
	fs := flag.NewFlagSet("pgpoolx", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the YAML configuration `file`")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage:\n  pgpoolx -config FILE          run the pooler\n  pgpoolx check -config FILE    validate a configuration\n  pgpoolx pins [FILE...|-]      report the pins in pgpoolx's JSON logs (pins -h)\n  pgpoolx -version\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errReported
	}
	if *showVersion {
		fmt.Fprintln(stdout, "pgpoolx", version)
		return nil
	}
	if *configPath == "" || fs.NArg() > 0 {
		fs.Usage()
		return errReported
	}
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "pgpoolx: %s:\n%v\n", *configPath, err)
		return errReported
	}
	level := zap.NewAtomicLevel()
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return err
	}
	log := newLogger(cfg.Log, level, stderr)
	defer log.Sync()

	srv, err := proxy.NewServer(cfg, log, proxy.Options{ConfigFile: *configPath, Level: &level, Version: version})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.AdminListen != "" {
		aln, err := lc.Listen(ctx, "tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin_listen on %s: %w", cfg.AdminListen, err)
		}
		hs := &http.Server{Handler: metrics.Handler(srv), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(aln)
		defer hs.Close()
		log.Info("serving /metrics, /healthz and /readyz", zap.String("addr", aln.Addr().String()))
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-hup:
				srv.Reload() // logs the outcome
			case <-ctx.Done():
				return
			}
		}
	}()

	log.Info("listening", zap.String("addr", ln.Addr().String()), zap.String("version", version),
		zap.Int("databases", len(cfg.Databases)))
	if ready != nil {
		ready(ln.Addr())
	}
	err = srv.Serve(ctx, ln)
	log.Info("stopped")
	return err
}

// check validates a configuration file and prints every problem.
func check(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgpoolx check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the YAML configuration `file`")
	if err := fs.Parse(args); err != nil {
		return errReported
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "usage: pgpoolx check -config FILE")
		return errReported
	}
	if _, err := config.Load(*configPath); err != nil {
		fmt.Fprintf(stderr, "%s:\n%v\n", *configPath, err)
		return errReported
	}
	fmt.Fprintf(stdout, "%s: OK\n", *configPath)
	return nil
}

func newLogger(lc config.Log, level zap.AtomicLevel, w io.Writer) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.TimeKey = "ts"
	var encoder zapcore.Encoder
	if lc.Format == "console" {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	} else {
		encoder = zapcore.NewJSONEncoder(enc)
	}
	core := zapcore.NewCore(encoder, zapcore.AddSync(w), level)
	return zap.New(core).Named("pgpoolx")
}
