package scan

import (
	"bytes"
	"errors"
	"fmt"
)

// splitArray returns the elements of the JSON array data, as subslices of
// it. It checks the array around them (brackets, commas, whitespace) and
// finds where each element ends (brackets balanced, strings closed), but
// leaves the syntax inside an element to the decoder it is handed to: the
// ergo decoders check it in full. That spares a second full pass over
// answers of many megabytes, which encoding/json would make (it costs more
// than decoding and verifying the blocks).
func splitArray(data []byte) ([][]byte, error) {
	i := skipSpace(data, 0)
	if i == len(data) || data[i] != '[' {
		return nil, fmt.Errorf("not a JSON array: %.24q", data[i:])
	}
	elems := [][]byte{}
	if i = skipSpace(data, i+1); i < len(data) && data[i] == ']' {
		i++
	} else {
		for {
			end, err := valueEnd(data, i)
			if err != nil {
				return nil, err
			}
			elems = append(elems, data[i:end])
			if i = skipSpace(data, end); i == len(data) {
				return nil, errTruncated
			}
			if data[i] == ']' {
				i++
				break
			}
			if data[i] != ',' {
				return nil, fmt.Errorf("at byte %d: %q after an array element", i, data[i])
			}
			i = skipSpace(data, i+1)
		}
	}
	if i = skipSpace(data, i); i != len(data) {
		return nil, fmt.Errorf("at byte %d: data after the array", i)
	}
	return elems, nil
}

var errTruncated = errors.New("truncated JSON")

// valueEnd returns the end of the JSON value that starts at data[i].
func valueEnd(data []byte, i int) (int, error) {
	if i == len(data) {
		return 0, errTruncated
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '[', '{':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				end, err := stringEnd(data, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '[', '{':
				depth++
			case ']', '}':
				if depth--; depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errTruncated
	case ',', ']', '}', ':':
		return 0, fmt.Errorf("at byte %d: %q where a value belongs", i, data[i])
	}
	// A number or a literal: up to the next delimiter.
	j := i
	for j < len(data) && !isDelimiter(data[j]) {
		j++
	}
	return j, nil
}

// stringEnd returns the end of the JSON string that starts at data[i].
func stringEnd(data []byte, i int) (int, error) {
	for j := i + 1; ; j++ {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return 0, errTruncated
		}
		j += k
		// The quote ends the string unless an odd number of backslashes
		// escape it.
		backslashes := 0
		for p := j - 1; p > i && data[p] == '\\'; p-- {
			backslashes++
		}
		if backslashes%2 == 0 {
			return j + 1, nil
		}
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', ',', ']', '}', '[', '{', '"', ':':
		return true
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}
