/*-------------------------------------------------------------------------
 *
 * scoring.c
 *		Module entry point of the scoring extension.
 *
 * Registers the cache invalidation callbacks that keep each backend's
 * active model and configuration current.  The extension needs no
 * shared memory and may be loaded on first use; shared_preload_libraries
 * is not required.
 *
 * IDENTIFICATION
 *		src/scoring.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "scoring.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Module load */
void
_PG_init(void)
{
	scoring_cache_init();
	client_init();
	lead_trigger_init();
}
