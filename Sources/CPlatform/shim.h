#include <malloc.h>
#include <stdint.h>

/* What Swift cannot say itself: a cache-line prefetch hint (the group table's batched lookups, EddyEngine's
   GroupState), a 64x64-bit multiply that stays one instruction (the key hash's mix), and glibc's allocator settings
   (`mallopt`, from malloc.h). */
static inline void eddy_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void eddy_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }

/* The high and low halves of a 64x64-bit product, xored: the key hash's mix. Swift's `multipliedFullWidth`, inlined
   into the hot loop's large function, was left as two calls into the standard library (26 instructions a message
   under callgrind); clang always inlines this one. */
static inline __attribute__((always_inline)) uint64_t eddy_mix64(uint64_t lhs, uint64_t rhs) {
    unsigned __int128 product = (unsigned __int128)lhs * rhs;
    return (uint64_t)(product >> 64) ^ (uint64_t)product;
}
