/*-------------------------------------------------------------------------
 *
 * train_parallel.c
 *		The parallel worker of scoring.train(): it reads the second half of
 *		the table's blocks and keeps its leads, then computes on their
 *		patterns in the fits.
 *
 * Reading the leads is half of train(), and one process reads them one
 * after another.  So the table is cut in two halves of its blocks: this
 * backend reads the first while a parallel worker (access/parallel.h, as
 * parallel index builds use) reads the second into a trainer of its own
 * and sends what it read through a shared memory queue: its tokens with
 * their counts and moments, its segments and its leads.  This backend
 * takes them in after its own half (merge_tokens() and the rest, in
 * train.c).
 *
 * The entries of the worker's leads (which token, what value) stay with
 * it, for what is done lead by lead: when the columns are chosen
 * (train_columns.c) it draws its part of the sample the ranges of numbers
 * are cut from, counts its values in the ranges, and encodes its leads
 * and keeps their distinct patterns, each time while this backend does
 * the same for its own.  It sends the sample, the counts, and the counts
 * of leads and wins of its patterns, but not their cells.
 *
 * The worker then stays for the fits, through a second queue the other
 * way: each time a fit needs the objective's gradient, the Hessian or the
 * logits at a point, on all patterns or on a sample of them (fit.h:
 * PatternHelper), it computes them on its own patterns while this backend
 * does on the others.
 *
 * The model must not depend on whether a worker could be had, so the
 * halves are always read apart and merged the same way: without a worker
 * (max_parallel_maintenance_workers = 0, a small table, no free worker
 * slot) this backend reads the second half into a second trainer itself.
 * Both halves are read in block order, with synchronized and parallel
 * scans off, so the same table gives the same model every time; what the
 * worker does with its leads is what would be done with them here, in
 * the same order.
 *
 * IDENTIFICATION
 *		src/train_parallel.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "optimizer/paths.h"
#include "storage/bufmgr.h"
#include "storage/shm_mq.h"
#include "storage/shm_toc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "bins.h"
#include "train.h"

/* Keys of the worker's shared memory */
#define TRAIN_KEY_TASK		UINT64CONST(0x5C0121B100000001)
#define TRAIN_KEY_QUEUE		UINT64CONST(0x5C0121B100000002)
#define TRAIN_KEY_ORDERS	UINT64CONST(0x5C0121B100000003)

/*
 * The queues: the worker's half and sums come through one, the patterns
 * and the points to sum at go the other way; and their messages' sizes
 */
#define TRAIN_QUEUE_SIZE	((Size) 1024 * 1024)
#define TOKENS_PER_MESSAGE	256
#define ROWS_PER_MESSAGE	16384

/* What the worker is asked to read */
typedef struct TrainTask
{
	TimestampTz since;
	TimestampTz until;
	BlockNumber first;			/* of the worker's half, to the table's end */
	TrainOptions opt;
} TrainTask;

/* The first message of the worker: the sizes of what follows */
typedef struct PartHeader
{
	int32		ntokens;
	int32		nsegments;
	int64		nrows;
} PartHeader;

/*
 * What the backend asks of the worker after the leads; the arrays that
 * follow an order are indexed by the worker's tokens
 */
typedef enum OrderKind
{
	ORDER_SAMPLE,				/* draw from your leads with these strides
								 * (int64), at most so many (int64) */
	ORDER_BINS,					/* count your values in these ranges: ncuts
								 * (int32), then the bounds (float4) */
	ORDER_ENCODE,				/* encode your leads and keep their patterns:
								 * TokenCodes, then the bounds (float4) and
								 * bin columns (int32) */
	ORDER_EVERY,				/* take a sample of your patterns */
	ORDER_SUM,					/* compute this on your patterns */
	ORDER_DONE					/* nothing more */
} OrderKind;

typedef struct Order
{
	OrderKind	kind;
	int32		ntokens;		/* SAMPLE, BINS, ENCODE: the worker's */
	PatternSum	what;			/* SUM: at the point that follows (ncols
								 * doubles) */
	int			fold;			/* SUM, EVERY */
	int			ncols;			/* SUM, ENCODE */
	bool		sample;			/* SUM: on the sample ORDER_EVERY took */
	int64		stride;			/* EVERY: patterns_every()'s */
	int64		first;			/* EVERY: the number of the first pattern */
} Order;

/* How the worker is to encode the values of one of its tokens */
typedef struct TokenCode
{
	Moments		logged;
	Moments		raw;
	int32		column;
	int32		ncuts;
	bool		log;
} TokenCode;

/* The parallel section of a train() call, from its reading to its fits */
struct TrainParallel
{
	ParallelContext *pcxt;		/* NULL: no worker */
	shm_mq_handle *from_worker;
	shm_mq_handle *to_worker;
	int32	   *tokmap;			/* the worker's tokens -> this trainer's */
	int32		ntokens;		/* the worker's */
	PatternHelper helper;		/* of the patterns, for the fits */
	PatternHelper sample_helper;	/* of a sample of them */
	int			ncols;
	int64		split;			/* the number of the worker's first pattern */
	int			nestlevel;		/* of the settings made for the reading */
};

PGDLLEXPORT void scoring_train_worker(dsm_segment *seg, shm_toc *toc);

/* ----------------------------------------------------------------
 * Messages between the backend and the worker
 * ----------------------------------------------------------------
 */

/* Sends one message; false when the other side has gone */
static bool
try_send(shm_mq_handle *mqh, const void *data, Size len)
{
#if PG_VERSION_NUM >= 150000
	return shm_mq_send(mqh, len, data, false, true) == SHM_MQ_SUCCESS;
#else
	return shm_mq_send(mqh, len, data, false) == SHM_MQ_SUCCESS;
#endif
}

/* The worker's complaint when the backend is no longer there */
static pg_attribute_noreturn() void
backend_gone(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("the backend running train() has gone")));
}

/* Sends one message from the worker to the backend */
static void
send_message(shm_mq_handle *mqh, const void *data, Size len)
{
	if (!try_send(mqh, data, len))
		backend_gone();
}

/*
 * Appends items[0..n) of a string array to buf, each with its '\0'.
 */
static void
append_strings(StringInfo buf, char *const *items, int32 n)
{
	int32		i;

	for (i = 0; i < n; i++)
		appendBinaryStringInfo(buf, items[i], strlen(items[i]) + 1);
}

/*
 * Sends what a trainer read but its leads' entries: the header; the
 * tokens, a piece at a time, each piece its Token structs followed by
 * their names and fields; the segments' names; the leads, in pieces.
 */
static void
send_part(shm_mq_handle *mqh, Trainer *tr)
{
	PartHeader	h;
	StringInfoData buf;
	int64		i;

	h.ntokens = tr->ntokens;
	h.nsegments = tr->nsegments;
	h.nrows = tr->nrows;
	send_message(mqh, &h, sizeof(h));

	initStringInfo(&buf);
	for (i = 0; i < tr->ntokens; i += TOKENS_PER_MESSAGE)
	{
		int32		n = Min(TOKENS_PER_MESSAGE, tr->ntokens - i);
		int32		j;

		resetStringInfo(&buf);
		appendBinaryStringInfo(&buf, (char *) (tr->tokens + i), sizeof(Token) * n);
		for (j = 0; j < n; j++)
		{
			Token	   *t = &tr->tokens[i + j];

			appendBinaryStringInfo(&buf, t->name, strlen(t->name) + 1);
			appendBinaryStringInfo(&buf, t->field, strlen(t->field) + 1);
		}
		send_message(mqh, buf.data, buf.len);
	}
	resetStringInfo(&buf);
	append_strings(&buf, tr->segments, tr->nsegments);
	send_message(mqh, buf.data, buf.len);
	pfree(buf.data);

	for (i = 0; i < tr->nrows; i += ROWS_PER_MESSAGE)
		send_message(mqh, tr->rows + i,
					 sizeof(LeadRow) * Min(ROWS_PER_MESSAGE, tr->nrows - i));
}

/* The next message from the worker, NULL when the worker has gone */
static char *
receive_message(shm_mq_handle *mqh, Size *len)
{
	void	   *data;

	if (shm_mq_receive(mqh, len, &data, false) != SHM_MQ_SUCCESS)
		return NULL;
	return data;
}

/* Complains about a message that is not what the other side should send */
static void
malformed(const char *what)
{
	elog(ERROR, "malformed %s between train() and its parallel worker", what);
}

/*
 * Points names[0..n) at the '\0'-terminated strings that fill p..end;
 * returns where they end.
 */
static const char *
take_strings(const char *p, const char *end, char **names, int32 n)
{
	int32		i;

	for (i = 0; i < n; i++)
	{
		const char *z = memchr(p, '\0', end - p);

		if (z == NULL)
			malformed("names");
		names[i] = (char *) p;
		p = z + 1;
	}
	return p;
}

/* Bytes sent in one message when an array goes in pieces */
#define PIECE_SIZE	((Size) 256 * 1024)

/*
 * Fills n bytes at dst from as many messages as they came in; false when
 * the other side has gone
 */
static bool
receive_into(shm_mq_handle *mqh, void *dst, Size n)
{
	Size		got = 0;

	while (got < n)
	{
		Size		len;
		char	   *data = receive_message(mqh, &len);

		if (data == NULL)
			return false;
		if (len > n - got)
			malformed("patterns");
		memcpy((char *) dst + got, data, len);
		got += len;
	}
	return true;
}

/* Sends n bytes from src in pieces; false when the other side has gone */
static bool
send_pieces(shm_mq_handle *mqh, const void *src, Size n)
{
	Size		off;

	for (off = 0; off < n; off += PIECE_SIZE)
		if (!try_send(mqh, (const char *) src + off, Min(PIECE_SIZE, n - off)))
			return false;
	return true;
}

/*
 * Takes in a piece of n tokens; their place here goes to map.  Returns
 * false when the worker has gone.
 */
static bool
receive_tokens(shm_mq_handle *mqh, Trainer *tr, int32 n, int32 *map)
{
	Size		len;
	char	   *data = receive_message(mqh, &len);
	Token	   *tokens;
	char	  **names;
	int32		i;

	if (data == NULL)
		return false;
	if (len < sizeof(Token) * n)
		malformed("tokens");
	/* a copy, for the Token structs' alignment */
	data = memcpy(palloc(len), data, len);
	tokens = (Token *) data;
	names = palloc(sizeof(char *) * 2 * n);
	if (take_strings(data + sizeof(Token) * n, data + len, names, 2 * n) != data + len)
		malformed("tokens");
	for (i = 0; i < n; i++)
	{
		tokens[i].name = names[2 * i];
		tokens[i].field = names[2 * i + 1];
	}
	merge_tokens(tr, tokens, n, map);
	pfree(names);
	pfree(data);
	return true;
}

/*
 * Takes in the half the worker read, after this backend's own; the
 * entries of its leads stay with it (tr->remote_rows).  Returns false when
 * the worker went away before it was all sent (its error, if it had one,
 * is raised by WaitForParallelWorkersToFinish()).
 */
static bool
receive_part(TrainParallel *par, Trainer *tr)
{
	shm_mq_handle *mqh = par->from_worker;
	PartHeader	h;
	char	   *data;
	Size		len;
	char	  **segments;
	int32	   *segmap;
	int64		got;

	if ((data = receive_message(mqh, &len)) == NULL)
		return false;
	if (len != sizeof(h))
		malformed("header");
	memcpy(&h, data, sizeof(h));

	par->ntokens = h.ntokens;
	par->tokmap = MemoryContextAllocHuge(tr->cxt,
										 sizeof(int32) * Max(h.ntokens, 1));
	for (got = 0; got < h.ntokens; got += TOKENS_PER_MESSAGE)
		if (!receive_tokens(mqh, tr, Min(TOKENS_PER_MESSAGE, h.ntokens - got),
							par->tokmap + got))
			return false;

	if ((data = receive_message(mqh, &len)) == NULL)
		return false;
	segments = palloc(sizeof(char *) * Max(h.nsegments, 1));
	segmap = palloc(sizeof(int32) * Max(h.nsegments, 1));
	if (take_strings(data, data + len, segments, h.nsegments) != data + len)
		malformed("segments");
	merge_segments(tr, segments, h.nsegments, segmap);
	pfree(segments);

	for (got = 0; got < h.nrows; got += len / sizeof(LeadRow))
	{
		if ((data = receive_message(mqh, &len)) == NULL)
			return false;
		if (len == 0 || len % sizeof(LeadRow) != 0 || len / sizeof(LeadRow) > h.nrows - got)
			malformed("leads");
		append_rows(tr, (LeadRow *) data, len / sizeof(LeadRow), segmap);
	}
	tr->remote_rows = h.nrows;
	pfree(segmap);
	return true;
}

/* Takes in the half another trainer of this backend read */
static void
merge_part(Trainer *tr, Trainer *other)
{
	int32	   *tokmap = palloc_extended(sizeof(int32) * Max(other->ntokens, 1),
										 MCXT_ALLOC_HUGE);
	int32	   *segmap = palloc(sizeof(int32) * Max(other->nsegments, 1));

	merge_tokens(tr, other->tokens, other->ntokens, tokmap);
	merge_segments(tr, other->segments, other->nsegments, segmap);
	append_rows(tr, other->rows, other->nrows, segmap);
	append_raw(tr, other->raw, other->nraw, tokmap);
	pfree(tokmap);
	pfree(segmap);
}

/* ----------------------------------------------------------------
 * The worker
 * ----------------------------------------------------------------
 */

/* Sends n bytes from the worker to the backend, in pieces (receive_into) */
static void
send_all(shm_mq_handle *mqh, const void *src, Size n)
{
	if (!send_pieces(mqh, src, n))
		backend_gone();
}

/*
 * A copy of the array of n elements of size sz at *p in an order's
 * message, which ends at end; *p moves past it
 */
static void *
take_array(const char **p, const char *end, Size n, Size sz)
{
	void	   *a;

	if (n > (Size) (end - *p) / sz)
		malformed("order");
	a = palloc_extended(Max(n * sz, 1), MCXT_ALLOC_HUGE);
	memcpy(a, *p, n * sz);
	*p += n * sz;
	return a;
}

/* The number of cuts in an order's ncuts, checked */
static int64
total_cuts(const int32 *ncuts, int32 n)
{
	int64		total = 0;
	int32		i;

	for (i = 0; i < n; i++)
	{
		if (ncuts[i] < 0 || ncuts[i] >= BINS_MAX)
			malformed("order");
		total += ncuts[i];
	}
	return total;
}

/*
 * Worker, ORDER_SAMPLE: draws its part of the sample of every number
 * (sample_leads) and sends how many values each has, then the values.
 */
static void
serve_sample(Trainer *tr, const char *p, const char *end,
			 shm_mq_handle *results)
{
	int32		n = tr->ntokens,
				i;
	int64	   *stride = take_array(&p, end, n, sizeof(int64));
	int64	   *cap = take_array(&p, end, n, sizeof(int64));
	float4	  **sample = palloc0(sizeof(float4 *) * Max(n, 1));
	int		   *nsample = palloc0(sizeof(int) * Max(n, 1));
	StringInfoData buf;

	if (p != end)
		malformed("order");
	for (i = 0; i < n; i++)
		if (stride[i] != 0)
			sample[i] = palloc(sizeof(float4) * Max(cap[i], 1));
	sample_leads(tr, stride, cap, sample, nsample);

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (char *) nsample, sizeof(int) * n);
	for (i = 0; i < n; i++)
		if (sample[i] != NULL)
			appendBinaryStringInfo(&buf, (char *) sample[i],
								   sizeof(float4) * nsample[i]);
	send_message(results, buf.data, buf.len);
	pfree(buf.data);
}

/*
 * Worker, ORDER_BINS: counts its values in the ranges of every number
 * (count_bins) and sends the counts, number after number.
 */
static void
serve_bins(Trainer *tr, const char *p, const char *end,
		   shm_mq_handle *results)
{
	int32		n = tr->ntokens,
				i;
	int32	   *ncuts = take_array(&p, end, n, sizeof(int32));
	float4	   *bounds = take_array(&p, end, total_cuts(ncuts, n),
										sizeof(float4));
	StringInfoData buf;

	if (p != end)
		malformed("order");
	for (i = 0; i < n; i++)
	{
		Token	   *t = &tr->tokens[i];

		t->ncuts = ncuts[i];
		t->bounds = bounds;
		t->bin_count = palloc0(sizeof(int64) * (t->ncuts + 1));
		bounds += t->ncuts;
	}
	count_bins(tr);

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		if (tr->tokens[i].ncuts > 0)
			appendBinaryStringInfo(&buf, (char *) tr->tokens[i].bin_count,
								   sizeof(int64) * (tr->tokens[i].ncuts + 1));
	send_message(results, buf.data, buf.len);
	pfree(buf.data);
}

/*
 * Worker, ORDER_ENCODE: takes the backend's columns, scales and ranges
 * for its tokens, encodes its leads and keeps their patterns
 * (build_patterns), and sends how many patterns there are, their n, y and
 * fold, and the pattern of each of its leads.
 */
static void
serve_encode(Trainer *tr, int ncols, const char *p, const char *end,
			 shm_mq_handle *results)
{
	int32		n = tr->ntokens,
				i;
	TokenCode  *codes = take_array(&p, end, n, sizeof(TokenCode));
	int32	   *ncuts = palloc(sizeof(int32) * Max(n, 1));
	int64		total;
	float4	   *bounds;
	int32	   *bin_columns;

	for (i = 0; i < n; i++)
		ncuts[i] = codes[i].ncuts;
	total = total_cuts(ncuts, n);
	bounds = take_array(&p, end, total, sizeof(float4));
	bin_columns = take_array(&p, end, total + n, sizeof(int32));
	if (p != end)
		malformed("order");
	for (i = 0; i < n; i++)
	{
		Token	   *t = &tr->tokens[i];
		int			b;

		if (codes[i].column >= ncols)
			malformed("order");
		for (b = 0; b <= codes[i].ncuts; b++)
			if (bin_columns[b] >= ncols)
				malformed("order");
		t->logged = codes[i].logged;
		t->raw = codes[i].raw;
		t->log = codes[i].log;
		t->column = codes[i].column;
		t->ncuts = codes[i].ncuts;
		t->bounds = bounds;
		t->bin_column = bin_columns;
		bounds += t->ncuts;
		bin_columns += t->ncuts + 1;
	}

	tr->ncols = ncols;
	build_patterns(tr);
	send_message(results, &tr->pt.npatterns, sizeof(int64));
	send_all(results, tr->pt.n, sizeof(double) * tr->pt.npatterns);
	send_all(results, tr->pt.y, sizeof(double) * tr->pt.npatterns);
	send_all(results, tr->pt.fold, tr->pt.npatterns);
	send_all(results, tr->row_pattern, sizeof(int64) * tr->nrows);
}

/*
 * Worker, ORDER_SUM: computes what the backend asks on its patterns, or on
 * the sample of them it took, and sends the result
 */
static void
serve_sum(const Patterns *pt, const Order *o, const char *data, Size len,
		  shm_mq_handle *results)
{
	double	   *beta,
			   *out;
	Size		size;

	if (o->ncols != pt->ncols || len != sizeof(Order) + sizeof(double) * o->ncols)
		malformed("order");
	beta = palloc(sizeof(double) * o->ncols);
	memcpy(beta, data + sizeof(Order), sizeof(double) * o->ncols);
	size = pattern_sum_size(pt->ncols, o->what, pt->npatterns);
	out = palloc_extended(sizeof(double) * Max(size, 1), MCXT_ALLOC_HUGE);
	pattern_sum(pt, o->what, 0, pt->npatterns, o->fold, beta, out);
	send_message(results, out, sizeof(double) * size);
	pfree(out);
	pfree(beta);
}

/*
 * The worker's part after its reading: the sample, ranges and patterns of
 * its leads, then what the fits ask of its patterns, until it is told it
 * is done or the backend goes.
 */
static void
serve(Trainer *tr, shm_mq_handle *orders, shm_mq_handle *results)
{
	bool		encoded = false;
	Patterns	sample;

	memset(&sample, 0, sizeof(sample));
	MemoryContextSwitchTo(tr->cxt);
	for (;;)
	{
		Size		len;
		char	   *data = receive_message(orders, &len);
		Order		o;
		bool		of_leads;

		if (data == NULL)
			return;				/* the backend has gone */
		if (len < sizeof(Order))
			malformed("order");
		memcpy(&o, data, sizeof(Order));
		/* the orders on the leads come first, those on the patterns after */
		of_leads = o.kind == ORDER_SAMPLE || o.kind == ORDER_BINS ||
			o.kind == ORDER_ENCODE;
		if (of_leads ? encoded || o.ntokens != tr->ntokens :
			!encoded && o.kind != ORDER_DONE)
			malformed("order");
		switch (o.kind)
		{
			case ORDER_SAMPLE:
				serve_sample(tr, data + sizeof(Order), data + len, results);
				break;
			case ORDER_BINS:
				serve_bins(tr, data + sizeof(Order), data + len, results);
				break;
			case ORDER_ENCODE:
				serve_encode(tr, o.ncols, data + sizeof(Order), data + len,
							 results);
				encoded = true;
				break;
			case ORDER_EVERY:
				if (o.stride < 1 || o.first < 0)
					malformed("order");
				sample = patterns_every(&tr->pt, o.fold, o.stride, o.first);
				break;
			case ORDER_SUM:
				serve_sum(o.sample ? &sample : &tr->pt, &o, data, len, results);
				break;
			case ORDER_DONE:
				return;
		}
	}
}

/*
 * Entry point of the parallel worker: reads the second half of the table
 * as the backend would and sends it, but its leads' entries, which it
 * keeps to sample, count and encode when asked; then helps with the fits.
 * It runs in the backend's transaction, with its snapshot and settings.
 */
void
scoring_train_worker(dsm_segment *seg, shm_toc *toc)
{
	TrainTask  *task = shm_toc_lookup(toc, TRAIN_KEY_TASK, false);
	shm_mq	   *mq = shm_toc_lookup(toc, TRAIN_KEY_QUEUE, false);
	shm_mq	   *orders_mq = shm_toc_lookup(toc, TRAIN_KEY_ORDERS, false);
	shm_mq_handle *mqh;
	shm_mq_handle *orders;
	Trainer    *tr;
	MemoryContext cxt;

	shm_mq_set_sender(mq, MyProc);
	mqh = shm_mq_attach(mq, seg, NULL);
	shm_mq_set_receiver(orders_mq, MyProc);
	orders = shm_mq_attach(orders_mq, seg, NULL);

	tr = trainer_create(NULL);
	cxt = tr->cxt;
	tr->opt = task->opt;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	MemoryContextSwitchTo(cxt);
	trainer_set_config(tr, scoring_config());
	tr->histories = read_histories(cxt, task->since, task->until);
	read_training_part(tr, task->since, task->until, task->first, MaxBlockNumber);
	free_histories(tr->histories);
	tr->histories = NULL;
	send_part(mqh, tr);
	SPI_finish();

	serve(tr, orders, mqh);
	shm_mq_detach(orders);
	shm_mq_detach(mqh);
}

/* ----------------------------------------------------------------
 * The backend's side: the reading, the helper of the fits, the end
 * ----------------------------------------------------------------
 */

/* The number of blocks of scoring.lead now */
static BlockNumber
lead_blocks(void)
{
	Relation	rel = table_openrv(makeRangeVar("scoring", "lead", -1),
								   AccessShareLock);
	BlockNumber n = RelationGetNumberOfBlocks(rel);

	table_close(rel, AccessShareLock);
	return n;
}

/*
 * Starts a worker on blocks first.. of the table into par; false when
 * none could be had (no dynamic shared memory, or no free slot).
 */
static bool
start_worker(TrainTask *task, TrainParallel *par)
{
	ParallelContext *pcxt;
	TrainTask  *shared;
	shm_mq	   *from,
			   *to;

	pcxt = CreateParallelContext("scoring", "scoring_train_worker", 1);
	shm_toc_estimate_chunk(&pcxt->estimator, sizeof(TrainTask));
	shm_toc_estimate_chunk(&pcxt->estimator, TRAIN_QUEUE_SIZE);
	shm_toc_estimate_chunk(&pcxt->estimator, TRAIN_QUEUE_SIZE);
	shm_toc_estimate_keys(&pcxt->estimator, 3);
	InitializeParallelDSM(pcxt);
	if (pcxt->seg == NULL)
	{
		DestroyParallelContext(pcxt);
		return false;
	}

	shared = shm_toc_allocate(pcxt->toc, sizeof(TrainTask));
	*shared = *task;
	shm_toc_insert(pcxt->toc, TRAIN_KEY_TASK, shared);
	from = shm_mq_create(shm_toc_allocate(pcxt->toc, TRAIN_QUEUE_SIZE),
						 TRAIN_QUEUE_SIZE);
	shm_toc_insert(pcxt->toc, TRAIN_KEY_QUEUE, from);
	shm_mq_set_receiver(from, MyProc);
	to = shm_mq_create(shm_toc_allocate(pcxt->toc, TRAIN_QUEUE_SIZE),
					   TRAIN_QUEUE_SIZE);
	shm_toc_insert(pcxt->toc, TRAIN_KEY_ORDERS, to);
	shm_mq_set_sender(to, MyProc);
	par->from_worker = shm_mq_attach(from, pcxt->seg, NULL);
	par->to_worker = shm_mq_attach(to, pcxt->seg, NULL);

	LaunchParallelWorkers(pcxt);
	if (pcxt->nworkers_launched == 0)
	{
		shm_mq_detach(par->from_worker);
		shm_mq_detach(par->to_worker);
		DestroyParallelContext(pcxt);
		return false;
	}
	shm_mq_set_handle(par->from_worker, pcxt->worker[0].bgwhandle);
	shm_mq_set_handle(par->to_worker, pcxt->worker[0].bgwhandle);
	par->pcxt = pcxt;
	return true;
}

/*
 * The worker has gone before it was done: its error if it had one (which
 * WaitForParallelWorkersToFinish() raises), else this one.
 */
static void
worker_gone(TrainParallel *par)
{
	WaitForParallelWorkersToFinish(par->pcxt);
	ereport(ERROR,
			(errcode(ERRCODE_INTERNAL_ERROR),
			 errmsg("the parallel worker of train() stopped before it was done")));
}

/*
 * Reads every lead closed as won or lost created in [since, until), with
 * its client and its history, into tr; config gives the margins of the
 * potential profits.  The first half of the table's blocks is read here;
 * the second by a parallel worker when the table is large enough and one
 * can be had, by a second trainer here otherwise (see the top of the
 * file).  This opens the parallel section of the call: end_parallel()
 * closes it.
 */
void
read_training_data(Trainer *tr, TimestampTz since, TimestampTz until,
				   ScoringConfig *config)
{
	BlockNumber nblocks = lead_blocks();
	TrainTask	task;
	TrainParallel *par = MemoryContextAllocZero(tr->cxt, sizeof(TrainParallel));

	task.since = since;
	task.until = until;
	task.first = nblocks / 2;
	task.opt = tr->opt;
	tr->parallel = par;

	/*
	 * The order the leads come in decides the order of the columns, the
	 * sample the ranges of numbers are cut from and how the sums round.  A
	 * synchronized scan of a large table starts wherever another scan of
	 * it left off, and a parallel one interleaves its workers' rows as
	 * they come, so the same leads would give a slightly different model
	 * from one call to the next: each half is read from its first block,
	 * in one process (as pg_dump does for a stable order of rows).  The
	 * sample is drawn by lead_id besides (lead_draw), for a table stored
	 * in another order.  The worker takes these settings with it; they
	 * hold until end_parallel().
	 */
	par->nestlevel = NewGUCNestLevel();
	(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("max_parallel_workers_per_gather", "0", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);

	trainer_set_config(tr, config);
	if (max_parallel_maintenance_workers > 0 &&
		task.first >= (BlockNumber) min_parallel_table_scan_size)
	{
		EnterParallelMode();
		if (!start_worker(&task, par))
			ExitParallelMode();
	}

	tr->histories = read_histories(tr->cxt, since, until);
	if (task.first > 0)
		read_training_part(tr, since, until, 0, task.first - 1);
	tr->part_rows = tr->nrows;

	tr->workers = par->pcxt != NULL ? 1 : 0;
	if (par->pcxt != NULL)
	{
		if (!receive_part(par, tr))
			worker_gone(par);
	}
	else
	{
		Trainer    *other = trainer_create(NULL);

		other->opt = tr->opt;
		trainer_set_config(other, config);
		other->histories = tr->histories;
		read_training_part(other, since, until, task.first, MaxBlockNumber);
		merge_part(tr, other);
		MemoryContextDelete(other->cxt);
	}
}

/*
 * Sends the worker an order of kind with the arrays in buf after it
 * (start_order), and frees buf
 */
static void
send_order(TrainParallel *par, OrderKind kind, StringInfo buf)
{
	Order		o;

	memset(&o, 0, sizeof(o));
	o.kind = kind;
	o.ntokens = par->ntokens;
	o.ncols = par->ncols;
	memcpy(buf->data, &o, sizeof(o));
	if (!try_send(par->to_worker, buf->data, buf->len))
		worker_gone(par);
	pfree(buf->data);
}

/* An order's buffer, with room for the Order at its start */
static void
start_order(StringInfo buf)
{
	Order		o;

	initStringInfo(buf);
	memset(&o, 0, sizeof(o));
	appendBinaryStringInfo(buf, (char *) &o, sizeof(o));
}

/* Appends the bounds of the ranges of the worker's tokens, one after another */
static void
append_bounds(StringInfo buf, Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	int32		w;

	for (w = 0; w < par->ntokens; w++)
	{
		Token	   *t = &tr->tokens[par->tokmap[w]];

		if (t->ncuts > 0)
			appendBinaryStringInfo(buf, (char *) t->bounds,
								   sizeof(float4) * t->ncuts);
	}
}

/* The worker's answer, which must be expect bytes long ((Size) -1: any) */
static char *
answer(TrainParallel *par, Size *len, Size expect, const char *what)
{
	char	   *data = receive_message(par->from_worker, len);

	if (data == NULL)
		worker_gone(par);
	if (expect != (Size) -1 && *len != expect)
		malformed(what);
	return data;
}

/*
 * Asks the worker for its part of the sample of the numbers
 * (train_columns.c: sample_numbers), with the strides and caps there.
 */
void
remote_sample_begin(Trainer *tr, const int64 *stride, const int64 *cap)
{
	TrainParallel *par = tr->parallel;
	int32		w;
	StringInfoData buf;

	start_order(&buf);
	for (w = 0; w < par->ntokens; w++)
		appendBinaryStringInfo(&buf, (char *) &stride[par->tokmap[w]],
							   sizeof(int64));
	for (w = 0; w < par->ntokens; w++)
		appendBinaryStringInfo(&buf, (char *) &cap[par->tokmap[w]],
							   sizeof(int64));
	send_order(par, ORDER_SAMPLE, &buf);
}

/*
 * Adds the worker's part of the sample after the values drawn here, as if
 * its leads were here: sample i takes at most cap[i] values.
 */
void
remote_sample_end(Trainer *tr, const int64 *cap, float4 **sample, int *nsample)
{
	TrainParallel *par = tr->parallel;
	int32		n = par->ntokens,
				w;
	const char *p,
			   *end;
	Size		len;
	int		   *counts = palloc(sizeof(int) * Max(n, 1));

	p = answer(par, &len, -1, "sample");
	end = p + len;
	if (len < sizeof(int) * n)
		malformed("sample");
	memcpy(counts, p, sizeof(int) * n);
	p += sizeof(int) * n;
	for (w = 0; w < n; w++)
	{
		int32		i = par->tokmap[w];
		int64		take;

		if (counts[w] == 0)
			continue;
		if (sample[i] == NULL || counts[w] < 0 || counts[w] > cap[i] ||
			(Size) counts[w] > (Size) (end - p) / sizeof(float4))
			malformed("sample");
		take = Min(counts[w], cap[i] - nsample[i]);
		memcpy(&sample[i][nsample[i]], p, sizeof(float4) * take);
		nsample[i] += take;
		p += sizeof(float4) * counts[w];
	}
	if (p != end)
		malformed("sample");
	pfree(counts);
}

/* Asks the worker to count its values in the ranges of the numbers */
void
remote_count_bins_begin(Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	int32		w;
	StringInfoData buf;

	start_order(&buf);
	for (w = 0; w < par->ntokens; w++)
		appendBinaryStringInfo(&buf, (char *) &tr->tokens[par->tokmap[w]].ncuts,
							   sizeof(int32));
	append_bounds(&buf, tr);
	send_order(par, ORDER_BINS, &buf);
}

/* Adds the worker's counts of values in each range (choose_bins) */
void
remote_count_bins_end(Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	int32		w;
	int64		total = 0;
	const char *p;
	Size		len;

	for (w = 0; w < par->ntokens; w++)
	{
		Token	   *t = &tr->tokens[par->tokmap[w]];

		if (t->ncuts > 0)
			total += t->ncuts + 1;
	}
	p = answer(par, &len, sizeof(int64) * total, "counts");
	for (w = 0; w < par->ntokens; w++)
	{
		Token	   *t = &tr->tokens[par->tokmap[w]];
		int			b;

		for (b = 0; t->ncuts > 0 && b <= t->ncuts; b++)
		{
			int64		c;

			memcpy(&c, p, sizeof(int64));
			t->bin_count[b] += c;
			p += sizeof(int64);
		}
	}
}

/*
 * Sends the worker how to encode its leads (build_patterns): for each of
 * its tokens the column, scale and ranges of this trainer's.
 */
void
remote_encode_begin(Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	int32		n = par->ntokens,
				w;
	StringInfoData buf;

	par->ncols = tr->ncols;
	start_order(&buf);
	for (w = 0; w < n; w++)
	{
		Token	   *t = &tr->tokens[par->tokmap[w]];
		TokenCode	c;

		memset(&c, 0, sizeof(c));
		c.logged = t->logged;
		c.raw = t->raw;
		c.log = t->log;
		c.column = t->column;
		c.ncuts = t->ncuts;
		appendBinaryStringInfo(&buf, (char *) &c, sizeof(c));
	}
	append_bounds(&buf, tr);
	for (w = 0; w < n; w++)
	{
		Token	   *t = &tr->tokens[par->tokmap[w]];
		int32		none = -1;

		if (t->ncuts > 0)
			appendBinaryStringInfo(&buf, (char *) t->bin_column,
								   sizeof(int32) * (t->ncuts + 1));
		else
			appendBinaryStringInfo(&buf, (char *) &none, sizeof(int32));
	}
	send_order(par, ORDER_ENCODE, &buf);
}

/*
 * Takes what this backend needs of the patterns the worker kept of its
 * leads (build_patterns): their n, y and fold after the patterns kept
 * here, from tr->pt.split on, and the pattern of each of its leads.
 */
void
remote_patterns(Trainer *tr)
{
	TrainParallel *par = tr->parallel;
	Patterns   *pt = &tr->pt;
	int64		first = pt->npatterns,
				local = tr->nrows - tr->remote_rows,
				m,
				i;
	Size		len;

	memcpy(&m, answer(par, &len, sizeof(m), "patterns"), sizeof(m));
	if (m < 0 || m > tr->remote_rows)
		malformed("patterns");
	if (!receive_into(par->from_worker, pt->n + first, sizeof(double) * m) ||
		!receive_into(par->from_worker, pt->y + first, sizeof(double) * m) ||
		!receive_into(par->from_worker, pt->fold + first, m) ||
		!receive_into(par->from_worker, tr->row_pattern + local,
					  sizeof(int64) * tr->remote_rows))
		worker_gone(par);
	for (i = local; i < tr->nrows; i++)
	{
		if (tr->row_pattern[i] < 0 || tr->row_pattern[i] >= m)
			malformed("patterns");
		tr->row_pattern[i] += first;
	}
	/* their cells are the worker's */
	for (i = first; i < first + m; i++)
		pt->start[i + 1] = pt->start[first];
	pt->npatterns = first + m;
}

/* Sends the worker what to compute on its patterns or its sample of them */
static void
send_sum(TrainParallel *par, bool sample, PatternSum what, int fold,
		 const double *beta)
{
	Size		len = sizeof(Order) + sizeof(double) * par->ncols;
	char	   *msg = palloc0(len);
	Order	   *o = (Order *) msg;

	o->kind = ORDER_SUM;
	o->what = what;
	o->fold = fold;
	o->ncols = par->ncols;
	o->sample = sample;
	memcpy(msg + sizeof(Order), beta, sizeof(double) * par->ncols);
	if (!try_send(par->to_worker, msg, len))
		worker_gone(par);
	pfree(msg);
}

/* Helper: sends the worker the point to compute on its patterns at */
static void
helper_start(void *arg, PatternSum what, int fold, const double *beta)
{
	send_sum((TrainParallel *) arg, false, what, fold, beta);
}

/* Helper: the same on its sample of them */
static void
sample_start(void *arg, PatternSum what, int fold, const double *beta)
{
	send_sum((TrainParallel *) arg, true, what, fold, beta);
}

/* Helper: takes the worker's result, size doubles */
static void
helper_finish(void *arg, double *out, Size size)
{
	TrainParallel *par = (TrainParallel *) arg;
	Size		len;
	const char *data = answer(par, &len, sizeof(double) * size, "sums");

	memcpy(out, data, len);
}

/*
 * Helper: has the worker take the sample of its patterns that
 * patterns_every() takes of this backend's, and gives its helper
 */
static PatternHelper *
helper_every(void *arg, int fold, int64 stride)
{
	TrainParallel *par = (TrainParallel *) arg;
	Order		o;

	memset(&o, 0, sizeof(o));
	o.kind = ORDER_EVERY;
	o.fold = fold;
	o.stride = stride;
	o.first = par->split;
	if (!try_send(par->to_worker, &o, sizeof(o)))
		worker_gone(par);
	return &par->sample_helper;
}

/*
 * Makes the worker, if there is one and it read leads, the helper of the
 * patterns from tr->pt.split on, which it holds (build_patterns), for the
 * fits.
 */
void
use_helper(Trainer *tr)
{
	TrainParallel *par = tr->parallel;

	if (par == NULL || par->pcxt == NULL || tr->remote_rows == 0)
		return;
	par->split = tr->pt.split;
	par->helper.start = helper_start;
	par->helper.finish = helper_finish;
	par->helper.every = helper_every;
	par->helper.arg = par;
	par->sample_helper.start = sample_start;
	par->sample_helper.finish = helper_finish;
	par->sample_helper.every = NULL;
	par->sample_helper.arg = par;
	tr->pt.helper = &par->helper;
}

/*
 * Closes the parallel section read_training_data() opened: the worker is
 * told it is done and waited for, and the reading's settings are undone.
 * After this the call may write.
 */
void
end_parallel(Trainer *tr)
{
	TrainParallel *par = tr->parallel;

	if (par == NULL)
		return;
	tr->pt.helper = NULL;
	if (par->pcxt != NULL)
	{
		Order		o;

		memset(&o, 0, sizeof(o));
		o.kind = ORDER_DONE;
		if (!try_send(par->to_worker, &o, sizeof(o)))
			worker_gone(par);
		WaitForParallelWorkersToFinish(par->pcxt);
		DestroyParallelContext(par->pcxt);
		ExitParallelMode();
	}
	AtEOXact_GUC(true, par->nestlevel);
	tr->parallel = NULL;
}
