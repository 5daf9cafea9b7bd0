package readable

import "testing"

func TestGroup(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "999": "999", "1000": "1,000", "-1234567": "-1,234,567",
		"9223372036854775807": "9,223,372,036,854,775,807", "": "", "12a4": "12a4", "-": "-",
	} {
		if got := Group(in); got != want {
			t.Errorf("Group(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestERG(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0 ERG", "1000000": "0.001 ERG", "1": "0.000000001 ERG", "1500000000000": "1,500 ERG",
		"123456789012": "123.456789012 ERG", "9223372036854775807": "9,223,372,036.854775807 ERG", "-2500000000": "-2.5 ERG",
		"nonsense": "nonsense",
	} {
		if got := ERG(in); got != want {
			t.Errorf("ERG(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzERG(f *testing.F) {
	f.Add("1500000")
	f.Add("-0")
	f.Fuzz(func(t *testing.T, s string) {
		ERG(s)
		Group(s)
	})
}
