package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pgpoolx/pgpoolx/pinreport"
)

// Progress is shown on a terminal for inputs of at least progressMin
// bytes, at most every progressEvery, and not before progressEvery has
// passed: a quick run shows none.
const (
	progressMin   = 64 << 20
	progressEvery = 250 * time.Millisecond
	defaultTop    = 30 // rows in the text table
)

// errInterrupted ends reading on SIGINT or SIGTERM.
var errInterrupted = errors.New("interrupted")

// pins reports the pins in pgpoolx's JSON logs (pgpoolx pins [FILE|-]).
func pins(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pgpoolx pins", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print one JSON object, for programs, instead of tables")
	rds := fs.Bool("rds-proxy", false, "also show what AWS RDS Proxy would pin for, and a suggested init_query")
	top := fs.Int("top", 0, fmt.Sprintf("show the `N` rows with the most pinned time, 0 for all (default %d, all with -json)", defaultTop))
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: pgpoolx pins [flags] [FILE|- ...]

Reads pgpoolx's JSON logs (log.format: json) from the FILEs in order, or from
standard input, and reports its pins: for each reason and statement digest how
often it pinned a session to its server connection and for how long, and how to
avoid it. Gzip-compressed files are read as they are.

Flags:
`)
		fs.PrintDefaults()
	}
	names, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return errReported
	}
	if len(names) == 0 {
		if isTerminal(stdin) {
			fmt.Fprintln(stderr, "pgpoolx pins: give a log FILE, or pipe the log in (standard input is a terminal)")
			fs.Usage()
			return errReported
		}
		names = []string{"-"}
	}
	topSet := false
	fs.Visit(func(f *flag.Flag) { topSet = topSet || f.Name == "top" })
	if !topSet && !*asJSON {
		*top = defaultTop
	}

	inputs, err := openInputs(names, stdin)
	defer func() {
		for _, in := range inputs {
			in.close()
		}
	}()
	if err != nil {
		return err
	}
	var total int64
	for _, in := range inputs {
		if in.size < 0 {
			total = -1
			break
		}
		total += in.size
	}
	interrupt := make(chan os.Signal, 1)
	signal.Notify(interrupt, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(interrupt)
	prog := &progress{w: stderr, total: total, now: time.Now, on: isTerminal(stderr)}
	prog.next = prog.now().Add(progressEvery)

	agg := pinreport.NewAggregator(pinreport.Options{})
	var readErr error
	for _, in := range inputs {
		if readErr = readInput(agg, in, prog, interrupt); readErr != nil {
			break
		}
	}
	prog.clear()

	r := agg.Report()
	opts := pinreport.WriteOptions{Top: *top, RDSProxy: *rds}
	if *asJSON {
		err = pinreport.WriteJSON(stdout, r, opts)
	} else {
		err = pinreport.WriteText(stdout, r, opts)
	}
	switch {
	case errors.Is(readErr, errInterrupted):
		fmt.Fprintf(stderr, "pgpoolx pins: interrupted; the report covers the first %d MiB read\n", prog.read>>20)
		return errReported
	case readErr != nil:
		fmt.Fprintf(stderr, "pgpoolx pins: the report covers what was read before: %v\n", readErr)
		return errReported
	}
	return err
}

// parseInterleaved parses flags that may come before, between or after
// the file names, and returns the names.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var names []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return names, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			// Everything after "--" is a name.
			return append(names, rest...), nil
		}
		names = append(names, rest[0])
		args = rest[1:]
	}
}

// input is one log to read.
type input struct {
	name  string
	r     io.Reader
	size  int64 // -1 if unknown
	close func() error
}

// openInputs opens every named log ("-" is stdin) before any is read, so
// that a wrong name fails at once. The caller closes them even on error.
func openInputs(names []string, stdin io.Reader) ([]input, error) {
	var inputs []input
	for _, name := range names {
		in := input{name: name, r: stdin, size: -1, close: func() error { return nil }}
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return inputs, err
			}
			in.name, in.r, in.close = name, f, f.Close
		} else {
			in.name = "standard input"
		}
		if f, ok := in.r.(*os.File); ok {
			if fi, err := f.Stat(); err == nil && fi.Mode().IsRegular() {
				in.size = fi.Size()
			}
		}
		inputs = append(inputs, in)
	}
	return inputs, nil
}

// readInput feeds one log to agg, through gzip if it is compressed.
func readInput(agg *pinreport.Aggregator, in input, prog *progress, interrupt <-chan os.Signal) error {
	prog.r = &interruptible{r: in.r, interrupt: interrupt}
	br := bufio.NewReaderSize(prog, 64<<10)
	var r io.Reader = br
	magic, err := br.Peek(2)
	switch {
	case errors.Is(err, errInterrupted):
		return err
	case err != nil && !errors.Is(err, io.EOF):
		return fmt.Errorf("%s: %w", in.name, err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
		defer zr.Close()
		r = zr
	}
	if err := agg.ReadLog(r); err != nil {
		if errors.Is(err, errInterrupted) {
			return err
		}
		return fmt.Errorf("%s: %w", in.name, err)
	}
	return nil
}

// interruptible ends reading with errInterrupted once a signal arrived,
// and from then on. A read that blocks (a quiet pipe) is not interrupted;
// whatever writes to the pipe usually gets the same Ctrl-C and ends it.
type interruptible struct {
	r           io.Reader
	interrupt   <-chan os.Signal
	interrupted bool
}

func (r *interruptible) Read(b []byte) (int, error) {
	select {
	case <-r.interrupt:
		r.interrupted = true
	default:
	}
	if r.interrupted {
		return 0, errInterrupted
	}
	return r.r.Read(b)
}

// progress counts the bytes read through it and, if on, shows them on the
// terminal w: as a percentage of total when the size of the input is
// known, as MiB read when it is not.
type progress struct {
	r     io.Reader
	w     io.Writer
	on    bool
	total int64 // -1 if unknown
	read  int64
	now   func() time.Time
	next  time.Time // when to show it next
	shown bool
}

func (p *progress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.read += int64(n)
	if p.on && (p.total >= progressMin || p.total < 0 && p.read >= progressMin) {
		if t := p.now(); !t.Before(p.next) {
			p.show()
			p.next = t.Add(progressEvery)
		}
	}
	return n, err
}

func (p *progress) show() {
	if p.total > 0 {
		fmt.Fprintf(p.w, "\rpgpoolx pins: %3d%% of %d MiB", min(100*p.read/p.total, 100), p.total>>20)
	} else {
		fmt.Fprintf(p.w, "\rpgpoolx pins: %d MiB read", p.read>>20)
	}
	p.shown = true
}

// clear erases the progress line, if one was shown.
func (p *progress) clear() {
	if p.shown {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.shown = false
	}
}

// isTerminal tells whether v is an *os.File open on a terminal (a
// character device other than /dev/null).
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
