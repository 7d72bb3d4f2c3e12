#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// The decoding reference for the hot-path benchmark: simdjson On-Demand parsing each record from a
/// padded copy, extracting `event_timestamp`, `user`, `page` and `event` as strings, and counting
/// records per `event` in a small open-addressing table. One thread at a time.
typedef struct SimdjsonReference SimdjsonReference;

/// A reference for records of at most `max_record_bytes`; NULL if out of memory.
SimdjsonReference *simdjson_reference_create(size_t max_record_bytes);
void simdjson_reference_destroy(SimdjsonReference *reference);

/// Decodes and counts records `first ..< first + count` of a batch: record `i` is
/// `bytes[offsets[i] ..< offsets[i + 1]]`. Returns how many of them failed (not counted).
size_t simdjson_reference_decode(SimdjsonReference *reference, const uint8_t *bytes, const size_t *offsets,
                                 size_t first, size_t count);

/// The number of distinct `event` values counted so far.
size_t simdjson_reference_group_count(const SimdjsonReference *reference);
/// Group `index`'s count; its key's bytes in `*key` / `*key_length` (valid until the next call that counts).
uint64_t simdjson_reference_group(const SimdjsonReference *reference, size_t index, const uint8_t **key,
                                  size_t *key_length);
/// The summed lengths of every extracted field, so that no extraction can be optimised away.
uint64_t simdjson_reference_checksum(const SimdjsonReference *reference);
/// Forgets the counts (keeps the memory).
void simdjson_reference_reset(SimdjsonReference *reference);
/// The simdjson kernel On-Demand was compiled for ("icelake", "haswell", "westmere", "fallback").
const char *simdjson_reference_implementation(void);

#ifdef __cplusplus
}
#endif
