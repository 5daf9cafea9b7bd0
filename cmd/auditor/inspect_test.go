package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/async-emission/auditor/internal/fixtures"
)

// runCmd runs the command in-process and returns its exit code, stdout lines
// decoded as JSON objects, and stderr.
func runCmd(t *testing.T, stdin string, args ...string) (int, []map[string]any, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut})
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("output line is not JSON: %q", l)
		}
		lines = append(lines, m)
	}
	return code, lines, errOut.String()
}

func kinds(lines []map[string]any) map[string]int {
	n := map[string]int{}
	for _, l := range lines {
		n[l["kind"].(string)]++
	}
	return n
}

func TestInspectBlock(t *testing.T) {
	code, lines, stderr := runCmd(t, "", "inspect", fixtures.Path(t, "blocks", "mainnet_1000001.json"))
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	// Block line, header line, 46 transactions and 649 boxes.
	if k := kinds(lines); k["block"] != 1 || k["header"] != 1 || k["transaction"] != 46 || k["box"] != 649 {
		t.Fatalf("line kinds %v", k)
	}
	if lines[0]["kind"] != "block" || lines[1]["kind"] != "header" || lines[2]["kind"] != "transaction" || lines[3]["kind"] != "box" {
		t.Fatal("a block prints its line, its header, then each transaction followed by its boxes")
	}
	for _, l := range lines {
		if l["ok"] != true {
			t.Fatalf("line not ok: %v", l)
		}
	}
	if lines[0]["transactionsRootOk"] != true || lines[0]["extensionRootOk"] != true || lines[1]["pow"] != "ok" {
		t.Fatalf("block/header lines %v %v", lines[0], lines[1])
	}
}

func TestInspectRegistersRenderExactly(t *testing.T) {
	// Block 1000001 has 471 outputs with registers; Long values (alone or
	// in collections) must be decimal strings and every register must carry
	// its type name.
	_, lines, _ := runCmd(t, "", "inspect", fixtures.Path(t, "blocks", "mainnet_1000001.json"))
	var longs, regs int
	for _, l := range lines {
		if l["kind"] != "box" {
			continue
		}
		th, _ := l["templateHash"].(map[string]any)
		if sha, _ := th["sha256"].(string); len(sha) != 64 {
			t.Fatalf("box without sha256 template hash: %v", l)
		}
		if blake, _ := th["blake2b256"].(string); len(blake) != 64 || blake == th["sha256"] {
			t.Fatalf("box without blake2b256 template hash: %v", l)
		}
		if a, _ := l["address"].(string); a == "" {
			t.Fatalf("box without address: %v", l)
		}
		for name, r := range l["registers"].(map[string]any) {
			reg := r.(map[string]any)
			typ, _ := reg["type"].(string)
			if typ == "" {
				t.Fatalf("%s without type: %v", name, reg)
			}
			regs++
			switch typ {
			case "Long":
				if _, ok := reg["value"].(string); !ok {
					t.Fatalf("Long rendered as %T, want a decimal string", reg["value"])
				}
				longs++
			case "Coll[Long]":
				for _, v := range reg["value"].([]any) {
					if _, ok := v.(string); !ok {
						t.Fatalf("Coll[Long] element rendered as %T, want a decimal string", v)
					}
					longs++
				}
			}
		}
	}
	if regs == 0 || longs == 0 {
		t.Fatalf("found %d registers, %d Longs", regs, longs)
	}
}

func TestInspectStdinJSONLinesAndArrays(t *testing.T) {
	// JSON Lines of boxes on stdin.
	var boxes []json.RawMessage
	fixtures.JSON(t, &boxes, "boxes", "input_boxes_mainnet_700000_700010.json")
	var jl strings.Builder
	for _, b := range boxes {
		var compact bytes.Buffer
		if err := json.Compact(&compact, b); err != nil {
			t.Fatal(err)
		}
		jl.Write(compact.Bytes())
		jl.WriteByte('\n')
	}
	code, lines, stderr := runCmd(t, jl.String(), "inspect")
	if code != exitOK || len(lines) != len(boxes) {
		t.Fatalf("exit %d, %d lines for %d boxes; %s", code, len(lines), len(boxes), stderr)
	}
	// An array of v1 headers from a file given as "-" … and as a path.
	path := fixtures.Path(t, "headers", "chainslice_mainnet_417692_417791_v1.json")
	code, lines, stderr = runCmd(t, "", "inspect", path)
	if code != exitOK || len(lines) != 100 {
		t.Fatalf("exit %d, %d lines; %s", code, len(lines), stderr)
	}
	for _, l := range lines {
		if l["pow"] != "unchecked" {
			t.Fatalf("v1 header pow %v: Autolykos v1 must never be reported as checked", l["pow"])
		}
	}
}

func TestInspectFailuresExit1(t *testing.T) {
	// Five corrupted boxes fail verification; the sixth (element 4), whose
	// tree holds 33 bytes that are not a curve point, is not a box at all:
	// it is named as input that could not be read, which takes the exit
	// code to 2.
	code, lines, stderr := runCmd(t, "", "inspect", fixtures.Path(t, "boxes", "NEGATIVE_fleet_invalid_boxes.json"))
	if code != exitBadInput || len(lines) != 5 {
		t.Fatalf("negative fixtures: exit %d, %d lines, want 2 and 5; %s", code, len(lines), stderr)
	}
	if !strings.Contains(stderr, "element 4: ergoTree: invalid ErgoTree") {
		t.Fatalf("the box with a broken tree is not named: %s", stderr)
	}
	for _, l := range lines {
		if l["ok"] != false || l["boxId"] == l["computedBoxId"] {
			t.Fatalf("corrupted box reported ok: %v", l)
		}
	}

	// One byte changed in one output of a real block: that box, its
	// transaction and the block fail; exit 1.
	raw := string(fixtures.Read(t, "blocks", "mainnet_700004.json"))
	tampered := strings.Replace(raw, `"value": 3726500000`, `"value": 3726500001`, 1)
	if tampered == raw {
		t.Fatal("test bug: value not found")
	}
	code, lines, _ = runCmd(t, tampered, "inspect", "-")
	if code != exitFailed {
		t.Fatalf("tampered block: exit %d, want 1", code)
	}
	var bad []string
	for _, l := range lines {
		if l["ok"] == false {
			bad = append(bad, l["kind"].(string))
		}
	}
	if strings.Join(bad, ",") != "block,transaction,box" {
		t.Fatalf("failing lines %v, want block, transaction, box", bad)
	}
}

// TestInspectRefusesBadRegistersNamingTheField: a register the binary
// parser would refuse (an unknown type code; a group element off the
// curve) makes the box unreadable node JSON: exit 2, and the message names
// the register and the byte.
func TestInspectRefusesBadRegistersNamingTheField(t *testing.T) {
	for _, tc := range []struct{ register, want string }{
		{"ff01", "not a constant at byte 0"},
		{"0702" + strings.Repeat("ff", 32), "invalid group element at byte 1"},
	} {
		box := `{"value": 1, "ergoTree": "0008cd0327e65711a59378c59359c3e1d0f7abe906479eccb76094e50fe79d743ccc15e6", "creationHeight": 1, "assets": [], "additionalRegisters": {"R4": "` +
			tc.register + `"}, "transactionId": "4c6282be413c6e300a530618b37790be5f286ded758accc2aebd41554a1be308", "index": 0}`
		code, lines, stderr := runCmd(t, box, "inspect")
		if code != exitBadInput || len(lines) != 0 {
			t.Fatalf("R4 %s: exit %d, %d lines, want exit %d and none", tc.register, code, len(lines), exitBadInput)
		}
		if !strings.Contains(stderr, "additionalRegisters.R4") || !strings.Contains(stderr, tc.want) {
			t.Fatalf("R4 %s: %q: want the register and %q named", tc.register, stderr, tc.want)
		}
	}
}

func TestInspectUnreadableInputExit2(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	box := `{"value": 1, "ergoTree": "0008cd0327e65711a59378c59359c3e1d0f7abe906479eccb76094e50fe79d743ccc15e6", "creationHeight": 1, "assets": [], "additionalRegisters": {}, "transactionId": "4c6282be413c6e300a530618b37790be5f286ded758accc2aebd41554a1be308", "index": 0}`
	cases := []struct {
		name, file, content string
		want                []string // substrings of stderr
	}{
		{"syntax", "syntax.json", `{"value": 1,,}`, []string{"syntax.json", "at byte"}},
		{"truncated", "trunc.json", box[:40], []string{"trunc.json"}},
		{"missing field", "missing.json", strings.Replace(box, `"creationHeight": 1, `, "", 1), []string{"missing.json", "value 1", "creationHeight", "missing field"}},
		{"bad amount in JSON Lines", "lines.json", box + "\n" + strings.Replace(box, `"value": 1`, `"value": -3`, 1), []string{"lines.json", "value 2", "value: invalid amount"}},
		{"register gap", "gap.json", strings.Replace(box, `{}`, `{"R5": "0400"}`, 1), []string{"additionalRegisters.R5"}},
		{"unknown object", "other.json", `{"hello": "world"}`, []string{"other.json", "not a box, transaction, header or full block"}},
		{"array element", "arr.json", "[" + box + "," + strings.Replace(box, `"index": 0`, `"index": "x"`, 1) + "]", []string{"arr.json", "element 1", "index"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, "", "inspect", write(c.file, c.content))
			if code != exitBadInput {
				t.Fatalf("exit %d, want 2; stderr %s", code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Fatalf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
	if code, _, stderr := runCmd(t, "", "inspect", filepath.Join(dir, "absent.json")); code != exitBadInput || !strings.Contains(stderr, "absent.json") {
		t.Fatalf("missing file: exit %d, %s", code, stderr)
	}
	if code, _, _ := runCmd(t, "", "inspect", "--no-such-flag"); code != exitBadInput {
		t.Fatalf("bad flag: exit %d", code)
	}
	if code, _, _ := runCmd(t, "", "no-such-command"); code != exitBadInput {
		t.Fatalf("unknown command: exit %d", code)
	}
}
