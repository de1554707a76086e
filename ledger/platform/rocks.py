"""RocksDB (rocksdict) options for this project's embedded stores: the stores of one process share one
block cache, which also holds the index and bloom-filter blocks and is charged with the memtables (a
write buffer manager on the same cache), so RocksDB's memory stays near one figure whatever the
number of keys. Used by the sequencer's state store and the rebuild's entity states."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rocksdict import BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager


@dataclass
class Resources:
    """What the stores of one process share: the block cache (charged with the memtables too)."""

    cache_mib: int = 32
    _cache: Any = field(default=None, repr=False)
    _memtables: Any = field(default=None, repr=False)

    def options(self) -> Options:
        if self._cache is None:
            self._cache = Cache(self.cache_mib * 2**20)
            # memtables are charged to the same cache: one figure bounds RocksDB's memory
            self._memtables = WriteBufferManager.new_write_buffer_manager_with_cache(
                max(8, self.cache_mib // 3) * 2**20, False, self._cache)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        opts.set_paranoid_checks(True)
        table = BlockBasedOptions()
        table.set_block_cache(self._cache)
        table.set_block_size(8 * 1024)
        table.set_bloom_filter(10, False)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        opts.set_block_based_table_factory(table)
        opts.set_write_buffer_manager(self._memtables)
        opts.set_write_buffer_size(4 * 2**20)
        opts.set_max_write_buffer_number(2)
        opts.set_compression_type(DBCompressionType.lz4())
        opts.set_max_background_jobs(2)
        opts.set_max_open_files(256)
        opts.set_keep_log_file_num(2)
        return opts
