package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

func msg(typ byte, body string) []byte {
	return append(AppendHeader(nil, typ, len(body)), body...)
}

func TestReaderForwardsAndReads(t *testing.T) {
	var in bytes.Buffer
	in.Write(msg('Q', "SELECT 1\x00"))
	in.Write(msg('d', string(bytes.Repeat([]byte("x"), 100000)))) // bigger than the buffer
	in.Write(msg('S', ""))
	r := NewReader(bufio.NewReaderSize(&in, 16), 0)
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)

	typ, n, err := r.Next()
	if err != nil || typ != 'Q' || n != 9 {
		t.Fatalf("Next = %q %d %v", typ, n, err)
	}
	body, err := r.ReadBody(nil)
	if err != nil || string(body) != "SELECT 1\x00" {
		t.Fatalf("ReadBody = %q %v", body, err)
	}
	if typ, n, err = r.Next(); err != nil || typ != 'd' || n != 100000 {
		t.Fatalf("Next = %q %d %v", typ, n, err)
	}
	if err := r.Forward(w); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if want := msg('d', string(bytes.Repeat([]byte("x"), 100000))); !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("forwarded %d bytes, want %d", out.Len(), len(want))
	}
	if typ, n, err = r.Next(); err != nil || typ != 'S' || n != 0 {
		t.Fatalf("Next = %q %d %v", typ, n, err)
	}
	if _, _, err = r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("at end: %v, want EOF", err)
	}
}

func TestReaderSkipsUnreadBody(t *testing.T) {
	in := bytes.NewReader(append(msg('D', "abcdef"), msg('S', "")...))
	r := NewReader(bufio.NewReader(in), 0)
	r.Next()
	if head, _ := r.Peek(3); string(head) != "abc" {
		t.Fatalf("Peek = %q", head)
	}
	if typ, _, err := r.Next(); err != nil || typ != 'S' {
		t.Fatalf("Next after unread body = %q %v", typ, err)
	}
}

func TestReaderRejects(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"length below 4", []byte{'Q', 0, 0, 0, 3}, ErrBadLength},
		{"negative length", []byte{'Q', 0xff, 0xff, 0xff, 0xff}, ErrBadLength},
		{"over the limit", []byte{'Q', 0, 0, 1, 0}, ErrTooLarge},
		{"truncated header", []byte{'Q', 0, 0}, io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(bufio.NewReader(bytes.NewReader(tt.in)), 100)
			if _, _, err := r.Next(); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestForwardReportsWriterErrors(t *testing.T) {
	r := NewReader(bufio.NewReader(bytes.NewReader(msg('d', "payload"))), 0)
	r.Next()
	w := bufio.NewWriterSize(failWriter{}, 16)
	w.Write(make([]byte, 16)) // fill the buffer so the next write reaches failWriter
	var we *WriteError
	if err := r.Forward(w); !errors.As(err, &we) {
		t.Fatalf("err = %v, want *WriteError", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("boom") }

func TestCString(t *testing.T) {
	s, rest, ok := CString([]byte("ab\x00cd"))
	if !ok || string(s) != "ab" || string(rest) != "cd" {
		t.Fatalf("got %q %q %v", s, rest, ok)
	}
	if _, _, ok := CString([]byte("ab")); ok {
		t.Fatal("unterminated string accepted")
	}
}

// FuzzReader feeds arbitrary bytes as a client stream: every message is
// read, peeked, partly consumed or forwarded without panics, and no
// allocation exceeds the limit.
func FuzzReader(f *testing.F) {
	f.Add(msg('Q', "SELECT 1\x00"))
	f.Add(append(msg('P', "s\x00SELECT $1\x00\x00\x00"), msg('S', "")...))
	f.Add([]byte{'X', 0, 0, 0, 4})
	f.Add([]byte{'Q', 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bufio.NewReaderSize(bytes.NewReader(data), 16), 1<<16)
		w := bufio.NewWriter(io.Discard)
		for i := 0; ; i++ {
			_, n, err := r.Next()
			if err != nil {
				return
			}
			if n > 1<<16 {
				t.Fatalf("body of %d bytes passed the limit", n)
			}
			switch i % 4 {
			case 0:
				if _, err := r.ReadBody(nil); err != nil {
					return
				}
			case 1:
				if err := r.Forward(w); err != nil {
					return
				}
			case 2:
				head, _ := r.Peek(3)
				if err := r.Consume(len(head)); err != nil {
					return
				}
				if err := r.CopyRest(w); err != nil {
					return
				}
			default: // leave it for Next to skip
			}
		}
	})
}
