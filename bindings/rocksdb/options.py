"""The common RocksDB options, as one record turned into ``rocksdb_options_t`` at open."""

from __future__ import annotations

import attrs

from ._native import ffi, lib

COMPRESSION = {"none": 0, "snappy": 1, "zlib": 2, "bz2": 3, "lz4": 4, "lz4hc": 5, "zstd": 7}
INFO_LOG_LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3, "fatal": 4, "header": 5}


def _compression(_, attribute, value):
    if value not in COMPRESSION:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSION)}, not {value!r}")


@attrs.define
class Options:
    """What a DB is opened with. ``compression`` defaults to none: the CSD scan kernel reads
    uncompressed tables, and RocksDB's own default (snappy) is one keyword away."""

    create_if_missing: bool = True
    error_if_exists: bool = False
    write_buffer_size: int = 64 << 20
    max_write_buffer_number: int = 2
    level0_file_num_compaction_trigger: int = 4
    target_file_size_base: int = 64 << 20
    max_bytes_for_level_base: int = 256 << 20
    num_levels: int = 7
    block_size: int = 4096
    block_cache_size: int | None = 8 << 20  # None: no block cache
    compression: str = attrs.field(default="none", validator=_compression)
    bloom_bits_per_key: float | None = None  # e.g. 10 for a full bloom filter per table
    prefix_length: int | None = None  # a fixed-length prefix extractor (prefix bloom, seeks)
    max_background_jobs: int = 2
    max_open_files: int = -1
    disable_auto_compactions: bool = False
    recycle_log_file_num: int = 0
    use_fsync: bool = False
    info_log_level: str = "warn"
    lifetime_hints: bool = True  # pass RocksDB's WriteLifeTimeHint to the lfs (zone placement)
    # Bytes of table files kept in memory by their readers, for the whole process (the last
    # DB opened sets it): what the page cache gives RocksDB on a local file system.
    file_cache_size: int = 256 << 20

    def build(self):
        """A fresh ``rocksdb_options_t`` (with its cache), owned by the returned ``Built``."""
        opt = lib.rocksdb_options_create()
        lib.rocksdb_options_set_create_if_missing(opt, self.create_if_missing)
        lib.rocksdb_options_set_error_if_exists(opt, self.error_if_exists)
        lib.rocksdb_options_set_write_buffer_size(opt, self.write_buffer_size)
        lib.rocksdb_options_set_max_write_buffer_number(opt, self.max_write_buffer_number)
        lib.rocksdb_options_set_level0_file_num_compaction_trigger(opt, self.level0_file_num_compaction_trigger)
        lib.rocksdb_options_set_target_file_size_base(opt, self.target_file_size_base)
        lib.rocksdb_options_set_max_bytes_for_level_base(opt, self.max_bytes_for_level_base)
        lib.rocksdb_options_set_num_levels(opt, self.num_levels)
        lib.rocksdb_options_set_compression(opt, COMPRESSION[self.compression])
        lib.rocksdb_options_set_max_background_jobs(opt, self.max_background_jobs)
        lib.rocksdb_options_set_max_open_files(opt, self.max_open_files)
        lib.rocksdb_options_set_disable_auto_compactions(opt, self.disable_auto_compactions)
        lib.rocksdb_options_set_recycle_log_file_num(opt, self.recycle_log_file_num)
        lib.rocksdb_options_set_use_fsync(opt, self.use_fsync)
        lib.rocksdb_options_set_info_log_level(opt, INFO_LOG_LEVELS[self.info_log_level])
        if self.prefix_length is not None:
            lib.rocksdb_options_set_prefix_extractor(
                opt, lib.rocksdb_slicetransform_create_fixed_prefix(self.prefix_length))
        table = lib.rocksdb_block_based_options_create()
        lib.rocksdb_block_based_options_set_block_size(table, self.block_size)
        cache = ffi.NULL
        if self.block_cache_size is None:
            lib.rocksdb_block_based_options_set_no_block_cache(table, 1)
        else:
            cache = lib.rocksdb_cache_create_lru(self.block_cache_size)
            lib.rocksdb_block_based_options_set_block_cache(table, cache)
        if self.bloom_bits_per_key is not None:
            lib.rocksdb_block_based_options_set_filter_policy(
                table, lib.rocksdb_filterpolicy_create_bloom_full(self.bloom_bits_per_key))
        lib.rocksdb_options_set_block_based_table_factory(opt, table)
        lib.rocksdb_block_based_options_destroy(table)  # the factory holds its own copy
        return Built(opt, cache)


@attrs.define
class Built:
    """A ``rocksdb_options_t`` and the cache it shares; ``free`` once the DB is closed."""

    opt: object
    cache: object

    def free(self) -> None:
        if self.opt is not None:
            lib.rocksdb_options_destroy(self.opt)
            if self.cache != ffi.NULL:
                lib.rocksdb_cache_destroy(self.cache)
            self.opt = self.cache = None
