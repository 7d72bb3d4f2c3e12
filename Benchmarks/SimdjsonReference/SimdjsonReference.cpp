#include "SimdjsonReference.h"

#include <simdjson.h>

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The same short-key hash family as the hot path's (a wyhash-style multiply-mix), so that the
// comparison is about decoding, not about the counting table.
inline uint64_t mix(uint64_t lhs, uint64_t rhs) {
    __uint128_t product = static_cast<__uint128_t>(lhs) * rhs;
    return static_cast<uint64_t>(product >> 64) ^ static_cast<uint64_t>(product);
}

inline uint64_t hash_bytes(const uint8_t *bytes, size_t count) {
    constexpr uint64_t k0 = 0xA0761D6478BD642FULL, k1 = 0xE7037ED1A0B428DBULL, k2 = 0x8EBC6AF09C88C6E3ULL;
    uint64_t state = k0, first = 0, second = 0;
    auto load64 = [&](size_t offset) { uint64_t v; std::memcpy(&v, bytes + offset, 8); return v; };
    auto load32 = [&](size_t offset) { uint32_t v; std::memcpy(&v, bytes + offset, 4); return uint64_t(v); };
    if (count <= 16) {
        if (count >= 8) { first = load64(0); second = load64(count - 8); }
        else if (count >= 4) { first = load32(0); second = load32(count - 4); }
        else if (count > 0) { first = uint64_t(bytes[0]) << 16 | uint64_t(bytes[count >> 1]) << 8 | bytes[count - 1]; }
    } else {
        size_t offset = 0;
        while (count - offset > 16) { state = mix(load64(offset) ^ k1, load64(offset + 8) ^ state); offset += 16; }
        first = load64(count - 16);
        second = load64(count - 8);
    }
    return mix(k1 ^ count, mix(first ^ k1, second ^ state) ^ k2);
}

/// Counts per key: open addressing over owned keys; lookups allocate nothing.
class CountTable {
  public:
    CountTable() : slots_(64, -1) {}

    void add(std::string_view key) {
        const uint64_t hash = hash_bytes(reinterpret_cast<const uint8_t *>(key.data()), key.size());
        size_t slot = hash & (slots_.size() - 1);
        while (true) {
            const int32_t entry = slots_[slot];
            if (entry < 0) break;
            if (hashes_[entry] == hash && keys_[entry] == key) { counts_[entry] += 1; return; }
            slot = (slot + 1) & (slots_.size() - 1);
        }
        if ((keys_.size() + 1) * 2 > slots_.size()) { grow(); add(key); return; }
        slots_[slot] = int32_t(keys_.size());
        keys_.emplace_back(key);
        hashes_.push_back(hash);
        counts_.push_back(1);
    }

    size_t size() const { return keys_.size(); }
    const std::string &key(size_t index) const { return keys_[index]; }
    uint64_t count(size_t index) const { return counts_[index]; }
    void clear() { keys_.clear(); hashes_.clear(); counts_.clear(); std::fill(slots_.begin(), slots_.end(), -1); }

  private:
    void grow() {
        std::vector<int32_t> slots(slots_.size() * 2, -1);
        for (size_t entry = 0; entry < keys_.size(); ++entry) {
            size_t slot = hashes_[entry] & (slots.size() - 1);
            while (slots[slot] >= 0) slot = (slot + 1) & (slots.size() - 1);
            slots[slot] = int32_t(entry);
        }
        slots_.swap(slots);
    }

    std::vector<int32_t> slots_;
    std::vector<std::string> keys_;
    std::vector<uint64_t> hashes_;
    std::vector<uint64_t> counts_;
};

}  // namespace

struct SimdjsonReference {
    simdjson::ondemand::parser parser;
    std::vector<uint8_t> padded;
    size_t max_record_bytes = 0;
    CountTable counts;
    uint64_t checksum = 0;
};

extern "C" {

SimdjsonReference *simdjson_reference_create(size_t max_record_bytes) {
    auto *reference = new (std::nothrow) SimdjsonReference();
    if (reference == nullptr) return nullptr;
    reference->max_record_bytes = max_record_bytes;
    reference->padded.resize(max_record_bytes + simdjson::SIMDJSON_PADDING);
    if (reference->parser.allocate(max_record_bytes) != simdjson::SUCCESS) {
        delete reference;
        return nullptr;
    }
    return reference;
}

void simdjson_reference_destroy(SimdjsonReference *reference) { delete reference; }

size_t simdjson_reference_decode(SimdjsonReference *reference, const uint8_t *bytes, const size_t *offsets,
                                 size_t first, size_t count) {
    size_t failures = 0;
    uint8_t *buffer = reference->padded.data();
    const size_t capacity = reference->padded.size();
    for (size_t index = first; index < first + count; ++index) {
        const size_t length = offsets[index + 1] - offsets[index];
        if (length > reference->max_record_bytes) { ++failures; continue; }
        std::memcpy(buffer, bytes + offsets[index], length);
        simdjson::ondemand::document document;
        simdjson::ondemand::object object;
        std::string_view timestamp, user, page, event;
        if (reference->parser.iterate(buffer, length, capacity).get(document) ||
            document.get_object().get(object) ||
            object["event_timestamp"].get_string().get(timestamp) ||
            object["user"].get_string().get(user) ||
            object["page"].get_string().get(page) ||
            object["event"].get_string().get(event)) {
            ++failures;
            continue;
        }
        reference->checksum += timestamp.size() + user.size() + page.size() + event.size();
        reference->counts.add(event);
    }
    return failures;
}

size_t simdjson_reference_group_count(const SimdjsonReference *reference) { return reference->counts.size(); }

uint64_t simdjson_reference_group(const SimdjsonReference *reference, size_t index, const uint8_t **key,
                                  size_t *key_length) {
    const std::string &text = reference->counts.key(index);
    *key = reinterpret_cast<const uint8_t *>(text.data());
    *key_length = text.size();
    return reference->counts.count(index);
}

uint64_t simdjson_reference_checksum(const SimdjsonReference *reference) { return reference->checksum; }

void simdjson_reference_reset(SimdjsonReference *reference) {
    reference->counts.clear();
    reference->checksum = 0;
}

const char *simdjson_reference_implementation(void) {
#define SIMDJSON_REFERENCE_STRINGIFY_(name) #name
#define SIMDJSON_REFERENCE_STRINGIFY(name) SIMDJSON_REFERENCE_STRINGIFY_(name)
    return SIMDJSON_REFERENCE_STRINGIFY(SIMDJSON_BUILTIN_IMPLEMENTATION);
}

}  // extern "C"
