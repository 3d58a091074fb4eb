/*-------------------------------------------------------------------------
 *
 * idhash.h
 *		A simplehash table keyed by an int64 id (a client_id).
 *
 * Define SH_PREFIX, SH_ELEMENT_TYPE and SH_KEY (the element's key field, an
 * int64), then include this file.  The element also needs a field "char
 * status".  simplehash.h undefines its parameters, so this file has no
 * include guard and may be included once per table.
 *
 * IDENTIFICATION
 *		src/idhash.h
 *
 *-------------------------------------------------------------------------
 */
#include "common/hashfn.h"

#define SH_KEY_TYPE		int64
#define SH_HASH_KEY(tb, k) \
	hash_combine(murmurhash32((uint32) (k)), \
				 murmurhash32((uint32) ((uint64) (k) >> 32)))
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"
