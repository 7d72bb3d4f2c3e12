#include <lmdb.h>

/* Not LMDB's: a cache-line prefetch hint, for the group table's batched lookups (EddyEngine's GroupState).
   Swift has no prefetch; it lives in this existing shim rather than in a module of its own. */
static inline void eddy_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }
static inline void eddy_prefetch_for_write(const void *address) { __builtin_prefetch(address, 1, 3); }
