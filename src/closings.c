/*-------------------------------------------------------------------------
 *
 * closings.c
 *		The closing moments of a client's won leads that its later leads
 *		are still to count, as a min-heap.
 *
 * A lead's history counts the client's earlier leads that were won and
 * closed by its own moment.  Walking a client's leads in created_at order
 * (train.c's read_histories(), the trigger's import memo in client.c), a
 * win joins the heap when its lead is passed and leaves it, counted, once
 * the walk reaches its closing moment.
 *
 * IDENTIFICATION
 *		src/closings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/memutils.h"

#include "scoring.h"

/* Adds a closing moment */
void
closings_push(Closings *h, TimestampTz t)
{
	int			i;

	if (h->n == h->cap)
	{
		h->cap = Max(16, h->cap * 2);
		h->v = h->v ? repalloc(h->v, sizeof(TimestampTz) * h->cap) :
			MemoryContextAlloc(h->cxt, sizeof(TimestampTz) * h->cap);
	}
	for (i = h->n++; i > 0 && h->v[(i - 1) / 2] > t; i = (i - 1) / 2)
		h->v[i] = h->v[(i - 1) / 2];
	h->v[i] = t;
}

/* Removes the earliest closing moment */
static void
closings_pop(Closings *h)
{
	TimestampTz last = h->v[--h->n];
	int			i = 0;

	for (;;)
	{
		int			c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1] < h->v[c])
			c++;
		if (h->v[c] >= last)
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n > 0)
		h->v[i] = last;
}

/* Removes the closing moments up to at; returns how many there were */
int64
closings_settle(Closings *h, TimestampTz at)
{
	int64		n = 0;

	while (h->n > 0 && h->v[0] <= at)
	{
		closings_pop(h);
		n++;
	}
	return n;
}
