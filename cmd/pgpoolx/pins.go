package main

import (
	"errors"
	"io"
)

// pins reports the pins in pgpoolx's JSON logs (pgpoolx pins [FILE|-]).
func pins(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("pgpoolx pins: not implemented yet")
}
