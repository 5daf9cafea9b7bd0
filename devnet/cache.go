package devnet

import (
	"container/list"
	"sync"

	"github.com/async-emission/auditor/ergo"
)

// blockCache keeps rendered block JSON, least recently used first out,
// within a budget of bytes. A block larger than the whole budget is not
// kept. It is safe for concurrent use; the slices it returns are shared and
// must not be modified.
type blockCache struct {
	mu     sync.Mutex
	budget int64
	size   int64
	order  *list.List // of *cacheEntry, most recently used first
	byID   map[ergo.Digest]*list.Element
}

type cacheEntry struct {
	id   ergo.Digest
	json []byte
}

func newBlockCache(budget int64) *blockCache {
	return &blockCache{budget: budget, order: list.New(), byID: make(map[ergo.Digest]*list.Element)}
}

func (c *blockCache) get(id ergo.Digest) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).json, true
}

func (c *blockCache) put(id ergo.Digest, json []byte) {
	n := int64(len(json))
	if n > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.byID[id]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.byID[id] = c.order.PushFront(&cacheEntry{id: id, json: json})
	c.size += n
	for c.size > c.budget {
		last := c.order.Back()
		ent := c.order.Remove(last).(*cacheEntry)
		delete(c.byID, ent.id)
		c.size -= int64(len(ent.json))
	}
}

// stats returns the number of blocks held and their bytes.
func (c *blockCache) stats() (blocks int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.size
}
