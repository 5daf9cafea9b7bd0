package devnet

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestConfigValidate(t *testing.T) {
	for _, c := range []struct {
		cfg    Config
		fields []string
	}{
		{Config{Blocks: 10}, nil},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgEvery: 5, ReorgDepth: 2}, nil},
		{Config{}, []string{"Blocks"}},
		{Config{Blocks: MaxBlocks + 1}, []string{"Blocks"}},
		{Config{Blocks: 10, TxsPerBlock: -1}, []string{"TxsPerBlock"}},
		{Config{Blocks: 10, TxsPerBlock: MaxTxsPerBlock + 1}, []string{"TxsPerBlock"}},
		{Config{Blocks: 10, BlockTime: -time.Second}, []string{"BlockTime"}},
		{Config{Blocks: 10, ReorgEvery: 5, ReorgDepth: 2}, []string{"BlockTime"}},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgEvery: 1, ReorgDepth: 1}, []string{"ReorgEvery"}},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgEvery: -1}, []string{"ReorgEvery"}},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgDepth: 2}, []string{"ReorgDepth"}},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgEvery: 5}, []string{"ReorgDepth"}},
		{Config{Blocks: 10, BlockTime: time.Second, ReorgEvery: 5, ReorgDepth: MaxReorgDepth + 1}, []string{"ReorgDepth"}},
		{Config{Blocks: 10, CacheBytes: -1, CheckpointEvery: -1}, []string{"CacheBytes", "CheckpointEvery"}},
		{Config{Blocks: 0, TxsPerBlock: -1, ReorgEvery: 3, ReorgDepth: 1}, []string{"Blocks", "TxsPerBlock", "BlockTime"}},
	} {
		err := c.cfg.Validate()
		var fields []string
		for _, e := range unwrapAll(err) {
			var ce *ConfigError
			if !errors.As(e, &ce) {
				t.Fatalf("%+v: %v is not a *ConfigError", c.cfg, e)
			}
			fields = append(fields, ce.Field)
		}
		if !slices.Equal(fields, c.fields) {
			t.Errorf("%+v: errors on %v, want %v (%v)", c.cfg, fields, c.fields, err)
		}
		if _, nerr := New(c.cfg, zerolog.Nop()); (nerr == nil) != (c.fields == nil) {
			t.Errorf("%+v: New: %v", c.cfg, nerr)
		}
	}
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
