#include <malloc.h>

/* What Swift cannot say itself: a cache-line prefetch hint (the group table's batched lookups, EddyEngine's
   GroupState), and glibc's allocator settings (`mallopt`, from malloc.h). */
static inline void eddy_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void eddy_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }
