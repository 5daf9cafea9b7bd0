// Package readable writes amounts for people: integers with thousands
// separators and nanoERG as ERG with its decimals, exactly, never in
// E notation. The HTML report and the HTTP API's explanation pages use it.
package readable

import (
	"math/big"
	"strings"
)

// Group writes a decimal integer (an optional minus sign, then digits)
// with thousands separators: "1234567" is "1,234,567". Anything else is
// returned as it is.
func Group(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return sign + s
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	b.WriteString(sign)
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > len(sign) {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return b.String()
}

// nanoPerERG is how many nanoERG make an ERG.
const nanoPerERG = 1_000_000_000

// ERG writes an amount of nanoERG, a decimal integer, in ERG with as many
// decimals as it needs (up to 9) and thousands separators: "1500000" is
// "0.0015 ERG". Anything but a decimal integer is returned as it is.
func ERG(nano string) string {
	v, ok := new(big.Int).SetString(nano, 10)
	if !ok {
		return nano
	}
	neg := v.Sign() < 0
	v.Abs(v)
	whole, frac := new(big.Int).QuoRem(v, big.NewInt(nanoPerERG), new(big.Int))
	out := Group(whole.String())
	if frac.Sign() != 0 {
		digits := frac.String()
		out += "." + strings.TrimRight(strings.Repeat("0", 9-len(digits))+digits, "0")
	}
	if neg {
		out = "-" + out
	}
	return out + " ERG"
}
