package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// expandEnv replaces every ${NAME} in s with the value of the environment
// variable NAME, and every ${file:PATH} with the content of the file at
// PATH without its final line break (a mounted secret, say); "$${" stands
// for a literal "${". Other dollar signs are left
// alone, so SCRAM verifiers ("SCRAM-SHA-256$4096:...") need no escaping. The
// string is read once from left to right and substituted values are not
// expanded again.
//
// The returned problems never quote s or a variable's value: either may be a
// password.
func expandEnv(s string, lookupEnv func(string) (string, bool)) (string, []string) {
	if !strings.Contains(s, "${") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, `"${" without a closing "}" (write "$${" for a literal "${")`)
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			name := s[i+2 : i+2+end]
			i += 2 + end + 1
			if path, ok := strings.CutPrefix(name, "file:"); ok {
				v, err := readSecretFile(path)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				b.WriteString(v)
				continue
			}
			if !validEnvName(name) {
				problems = append(problems, `invalid environment variable name in "${...}": use letters, digits and _ (write "$${" for a literal "${")`)
				continue
			}
			v, ok := lookupEnv(name)
			if !ok {
				problems = append(problems, fmt.Sprintf("environment variable %s is not set", name))
				continue
			}
			b.WriteString(v)
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String(), problems
}

// maxSecretFile bounds a file read by ${file:PATH}.
const maxSecretFile = 64 << 10

// readSecretFile reads a ${file:PATH} value. Its errors name the file,
// never its content.
func readSecretFile(path string) (string, error) {
	if path == "" {
		return "", errors.New(`"${file:}" needs a file path`)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %s for ${file:...}: %w", path, errors.Unwrap(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %s for ${file:...}: %w", path, err)
	}
	if len(b) > maxSecretFile {
		return "", fmt.Errorf("%s is too large for ${file:...} (over %d bytes)", path, maxSecretFile)
	}
	s := strings.TrimSuffix(string(b), "\n")
	return strings.TrimSuffix(s, "\r"), nil
}

func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range []byte(name) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
