#include <malloc.h>
#include <stdint.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* What Swift cannot say itself: a cache-line prefetch hint (the group table's batched lookups, EddyEngine's
   GroupState), a 64x64-bit multiply that stays one instruction (the key hash's mix), unaligned loads and a 16-byte
   compare that stay a few instructions (the JSON scanner), and glibc's allocator settings (`mallopt`, from
   malloc.h). */
static inline void eddy_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void eddy_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

/* The high and low halves of a 64x64-bit product, xored: the key hash's mix. Swift's `multipliedFullWidth`, inlined
   into the hot loop's large function, was left as two calls into the standard library (26 instructions a message
   under callgrind); clang always inlines this one. */
static inline __attribute__((always_inline)) uint64_t eddy_mix64(uint64_t lhs, uint64_t rhs) {
    unsigned __int128 product = (unsigned __int128)lhs * rhs;
    return (uint64_t)(product >> 64) ^ (uint64_t)product;
}

/* Unaligned little-endian loads. Swift's `loadUnaligned(fromByteOffset:as:)` and `init(littleEndian:)`, inlined into
   the hot loop, were left as calls into their specializations (29 call sites in the decoder); clang always inlines
   these. */
static inline __attribute__((always_inline)) uint64_t eddy_load_le64(const void *address) {
    uint64_t value;
    __builtin_memcpy(&value, address, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap64(value);
#endif
    return value;
}
static inline __attribute__((always_inline)) uint32_t eddy_load_le32(const void *address) {
    uint32_t value;
    __builtin_memcpy(&value, address, 4);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    value = __builtin_bswap32(value);
#endif
    return value;
}

/* Bit i set: byte i of the 16 at `address` ends the JSON scanner's fast pass over a string (a quote, a backslash, a
   control byte below 0x20 or a non-ASCII byte). One compare and one movemask with SSE2. */
static inline __attribute__((always_inline)) uint32_t eddy_string_special_mask16(const uint8_t *address) {
#if defined(__SSE2__)
    __m128i bytes = _mm_loadu_si128((const __m128i *)address);
    __m128i quote = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('"'));
    __m128i backslash = _mm_cmpeq_epi8(bytes, _mm_set1_epi8('\\'));
    /* Signed: bytes 0x80 and above are negative, so below 0x20 (signed) is a control byte or a non-ASCII one. */
    __m128i low = _mm_cmplt_epi8(bytes, _mm_set1_epi8(0x20));
    return (uint32_t)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), low));
#else
    uint32_t mask = 0;
    for (int index = 0; index < 16; index++) {
        uint8_t byte = address[index];
        if (byte == '"' || byte == '\\' || byte < 0x20 || byte >= 0x80) mask |= 1u << index;
    }
    return mask;
#endif
}
