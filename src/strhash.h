/*-------------------------------------------------------------------------
 *
 * strhash.h
 *		A simplehash table keyed by C strings.
 *
 * Define SH_PREFIX, SH_ELEMENT_TYPE and SH_KEY (the element's key field, a
 * const char *), then include this file.  The element also needs fields
 * "uint32 hash" and "char status".  simplehash.h undefines its parameters,
 * so this file has no include guard and may be included once per table.
 *
 * IDENTIFICATION
 *		src/strhash.h
 *
 *-------------------------------------------------------------------------
 */
#include "common/hashfn.h"

#define SH_KEY_TYPE		const char *
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k), strlen(k))
#define SH_EQUAL(tb, a, b) (strcmp(a, b) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"
