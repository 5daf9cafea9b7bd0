package devnet

import (
	"errors"
	"fmt"
	"time"
)

// Config describes a devnet. The final chain is a function of Seed, Blocks,
// TxsPerBlock and Scenario only: the reorg settings, BlockTime and the
// tuning fields change what is shown when, never what the final chain is.
type Config struct {
	Seed   int64
	Blocks int // final chain length: heights 1 to Blocks

	// TxsPerBlock is about how many transactions a block holds (the
	// emission and fee-collection transactions included); zero means
	// DefaultTxsPerBlock.
	TxsPerBlock int

	// BlockTime is how often Run makes one more block visible. Zero makes
	// the whole final chain visible as soon as New returns.
	BlockTime time.Duration

	// With ReorgEvery K > 0 (and BlockTime > 0, or Step called by hand),
	// each height h that is a multiple of K, above ReorgDepth D and below
	// Blocks is first shown on a competing branch: blocks h-D+1 … h
	// replaced by alternates built on final block h-D. The next step
	// returns to the final chain, extended to h+1, which carries more work
	// (see the package documentation).
	ReorgEvery int
	ReorgDepth int
	// ReorgReinclude makes each competing branch re-include the final
	// chain's transactions (as a node's mempool puts them into the new
	// branch): the same bodies under other headers, so that the same
	// transactions and boxes move from one block to another.
	ReorgReinclude bool

	// Scenario, when set, adds its own transactions to every block (see
	// AsyncEmission). One with a Validate() error method is validated with
	// the Config.
	Scenario Scenario

	// Tuning. Zero takes the default.
	CacheBytes      int64 // rendered block JSON kept in memory; default DefaultCacheBytes
	CheckpointEvery int   // blocks between generator checkpoints; default DefaultCheckpointEvery
}

// Defaults and limits of Config.
const (
	DefaultTxsPerBlock     = 10
	DefaultCacheBytes      = 32 << 20
	DefaultCheckpointEvery = 1024

	MaxBlocks          = 2_000_000
	MaxTxsPerBlock     = 1000
	MaxReorgDepth      = 200 // the rollback a node keeps state for
	MaxCheckpointEvery = 1 << 16
)

// ConfigError names the Config field a validation failure is about.
type ConfigError struct {
	Field string
	Msg   string
}

func (e *ConfigError) Error() string { return "devnet: " + e.Field + ": " + e.Msg }

// Validate checks every field and returns the problems joined, each a
// *ConfigError.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if c.Blocks < 1 || c.Blocks > MaxBlocks {
		bad("Blocks", "%d is not in 1 … %d", c.Blocks, MaxBlocks)
	}
	if c.TxsPerBlock < 0 || c.TxsPerBlock > MaxTxsPerBlock {
		bad("TxsPerBlock", "%d is not in 0 (the default, %d) … %d", c.TxsPerBlock, DefaultTxsPerBlock, MaxTxsPerBlock)
	}
	if c.BlockTime < 0 {
		bad("BlockTime", "%s is negative", c.BlockTime)
	}
	switch {
	case c.ReorgEvery < 0:
		bad("ReorgEvery", "%d is negative", c.ReorgEvery)
	case c.ReorgEvery == 1:
		bad("ReorgEvery", "must be at least 2: the step after a reorg returns to the final chain")
	case c.ReorgEvery == 0 && c.ReorgDepth != 0:
		bad("ReorgDepth", "%d without ReorgEvery", c.ReorgDepth)
	case c.ReorgEvery == 0 && c.ReorgReinclude:
		bad("ReorgReinclude", "without ReorgEvery")
	case c.ReorgEvery > 0 && (c.ReorgDepth < 1 || c.ReorgDepth > MaxReorgDepth):
		bad("ReorgDepth", "%d is not in 1 … %d", c.ReorgDepth, MaxReorgDepth)
	}
	if c.ReorgEvery > 0 && c.BlockTime == 0 {
		bad("BlockTime", "reorgs need a block time (or Step called by hand): with 0 the whole chain is visible at once")
	}
	if s, ok := c.Scenario.(interface{ Validate() error }); ok {
		if err := s.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.CacheBytes < 0 {
		bad("CacheBytes", "%d is negative", c.CacheBytes)
	}
	if c.CheckpointEvery < 0 || c.CheckpointEvery > MaxCheckpointEvery {
		bad("CheckpointEvery", "%d is not in 0 (the default, %d) … %d", c.CheckpointEvery, DefaultCheckpointEvery, MaxCheckpointEvery)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero tuning fields set.
func (c Config) withDefaults() Config {
	if c.TxsPerBlock == 0 {
		c.TxsPerBlock = DefaultTxsPerBlock
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.CheckpointEvery == 0 {
		c.CheckpointEvery = DefaultCheckpointEvery
	}
	return c
}

// reorgAt reports whether making height h visible first shows a competing
// branch. The last height never does: the final chain replaces a branch by
// being one block longer, so that it carries more work.
func (c *Config) reorgAt(h uint32) bool {
	return c.ReorgEvery > 0 && h%uint32(c.ReorgEvery) == 0 && h > uint32(c.ReorgDepth) && h < uint32(c.Blocks)
}
