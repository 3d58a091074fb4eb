/*-------------------------------------------------------------------------
 *
 * train_store.c
 *		What scoring.train() keeps besides the fit: the lifetime uplift per
 *		client segment, the priority bands, and the model row itself.
 *
 * IDENTIFICATION
 *		src/train_store.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "train.h"

/* ----------------------------------------------------------------
 * Lifetime uplift and priority bands
 * ----------------------------------------------------------------
 */

/*
 * Learns the lifetime uplift of each client segment: over the leads won in
 * the ltv_months before the last ltv_months of the window, the mean profit
 * their clients brought in the ltv_months after, shrunk towards zero for
 * small segments (as if ten more leads had brought nothing).  Returns the
 * number of leads it learned from.
 */
int64
learn_ltv(Trainer *tr, TimestampTz until)
{
	Oid			argtypes[2] = {TIMESTAMPTZOID, INT4OID};
	Datum		args[2] = {TimestampTzGetDatum(until),
	Int32GetDatum(tr->opt.ltv_months)};
	double	   *sum,
			   *count;
	uint64		i;
	int32		s;

	if (SPI_execute_with_args(
							  "SELECT c.kind, c.industry, c.core_industry,"
							  "       (SELECT coalesce(sum(f.won_profit), 0)"
							  "          FROM scoring.lead f"
							  "         WHERE f.client_id = l.client_id AND f.status = 'won'"
							  "           AND f.created_at > l.created_at"
							  "           AND f.created_at <= l.created_at + make_interval(months => $2))"
							  "  FROM scoring.lead l JOIN scoring.client c USING (client_id)"
							  " WHERE l.status = 'won'"
							  "   AND l.created_at >= $1 - make_interval(months => 2 * $2)"
							  "   AND l.created_at < $1 - make_interval(months => $2)",
							  2, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the lifetime data");

	sum = palloc0(sizeof(double) * (tr->nsegments + SPI_processed + 1));
	count = palloc0(sizeof(double) * (tr->nsegments + SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		LeadInput	lead;
		bool		isnull;
		Datum		d;
		double		future;

		memset(&lead, 0, sizeof(lead));
		lead.has_client = true;
		lead.client_kind = SPI_getvalue(tup, desc, 1);
		lead.client_industry = SPI_getvalue(tup, desc, 2);
		d = SPI_getbinval(tup, desc, 3, &isnull);
		lead.client_core = isnull ? -1 : DatumGetBool(d) ? 1 : 0;
		d = SPI_getbinval(tup, desc, 4, &isnull);
		if (isnull || !numeric_to_finite_double(DatumGetNumeric(d), &future))
			continue;
		s = segment_id(tr, &lead);
		sum[s] += future;
		count[s] += 1;
	}

	tr->ltv = palloc0(sizeof(double) * Max(tr->nsegments, 1));
	for (s = 0; s < tr->nsegments; s++)
		tr->ltv[s] = sum[s] / (count[s] + 10.0);
	return (int64) SPI_processed;
}

static int
double_cmp(const void *a, const void *b)
{
	double		x = *(const double *) a;
	double		y = *(const double *) b;

	return (x > y) - (x < y);
}

/*
 * Band thresholds from the model's expected profit on the training leads:
 * the top band_shares[0] of leads reach priority 1, the top band_shares[1]
 * priority 2 or better, and so on.  Returns false when no lead has a
 * budget to compute an expected profit from.
 */
bool
compute_bands(Trainer *tr, const double *beta, double *bands)
{
	double	   *expected = palloc(sizeof(double) * Max(tr->nrows, 1));
	double	   *etas = palloc_extended(sizeof(double) * Max(tr->pt.npatterns, 1),
									   MCXT_ALLOC_HUGE);
	int64		n = 0,
				i;
	int			b;

	pattern_logits(&tr->pt, -1, beta, etas);
	for (i = 0; i < tr->nrows; i++)
	{
		LeadRow    *r = &tr->rows[i];
		double		p;

		if (isnan(r->potential))
			continue;
		p = logistic(etas[tr->row_pattern[i]]);
		expected[n++] = p * (r->potential + (tr->ltv ? tr->ltv[r->segment] : 0));
	}
	pfree(etas);
	if (n == 0)
		return false;
	qsort(expected, n, sizeof(double), double_cmp);
	for (b = 0; b < 4; b++)
	{
		int64		k = (int64) floor((1.0 - tr->opt.band_shares[b]) * n);

		bands[b] = round(expected[Min(k, n - 1)]);
	}
	pfree(expected);
	return true;
}

/* ----------------------------------------------------------------
 * Storing the model
 * ----------------------------------------------------------------
 */

/* Appends "key": number to a JSON object being built */
static void
json_number(StringInfo buf, bool *first, const char *key, double value)
{
	appendStringInfoString(buf, *first ? "" : ", ");
	escape_json(buf, key);
	appendStringInfo(buf, ": %.17g", value);
	*first = false;
}

/* The coefficients as {"name": weight} */
static char *
weights_json(Trainer *tr, const double *beta)
{
	StringInfoData buf;
	bool		first = true;
	int32		j;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (j = 1; j < tr->ncols; j++)
		json_number(&buf, &first, tr->column_names[j], beta[j]);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The numeric columns as {"name": {mean, std, min, max, log[, cuts]}} */
static char *
numeric_json(Trainer *tr)
{
	StringInfoData buf;
	bool		first = true;
	int32		j;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (j = 1; j < tr->ncols; j++)
	{
		Token	   *t = tr->column_token[j];
		const Moments *m;

		if (t == NULL)
			continue;
		m = token_moments(t);
		appendStringInfoString(&buf, first ? "" : ", ");
		escape_json(&buf, t->name);
		appendStringInfo(&buf,
						 ": {\"mean\": %.17g, \"std\": %.17g, \"min\": %.17g, \"max\": %.17g,"
						 " \"log\": %s",
						 m->mean, moments_std(m), m->min, m->max, t->log ? "true" : "false");
		if (t->ncuts > 0)
		{
			int			b;

			appendStringInfoString(&buf, ", \"cuts\": [");
			for (b = 0; b < t->ncuts; b++)
				appendStringInfo(&buf, "%s%s", b ? ", " : "", t->cut_texts[b]);
			appendStringInfoChar(&buf, ']');
		}
		appendStringInfoChar(&buf, '}');
		first = false;
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* The uplift per segment as {"segment": uplift} */
static char *
ltv_json(Trainer *tr)
{
	StringInfoData buf;
	bool		first = true;
	int32		s;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (s = 0; tr->ltv && s < tr->nsegments; s++)
		if (tr->ltv[s] > 0)
			json_number(&buf, &first, tr->segments[s], round(tr->ltv[s] * 100) / 100);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* A JSON text as a jsonb datum */
static Datum
jsonb_datum(const char *text)
{
	return DirectFunctionCall1(jsonb_in, CStringGetDatum(text));
}

/* Runs a statement that must succeed */
static void
run(const char *sql, int nargs, Oid *argtypes, Datum *args, int expect)
{
	if (SPI_execute_with_args(sql, nargs, argtypes, args, NULL, false, 0) != expect)
		elog(ERROR, "could not run \"%s\"", sql);
}

/*
 * Inserts the model row and, when asked, makes it the active one.  The
 * table lock serialises concurrent activations so that exactly one model
 * is active whatever the interleaving; readers are never blocked.
 */
int32
store_model(Trainer *tr, TimestampTz since, TimestampTz until, Jsonb *options,
			const double *beta, const char *metrics)
{
	Oid			argtypes[11] = {TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID,
		INT8OID, JSONBOID, FLOAT8OID, JSONBOID, JSONBOID, JSONBOID, JSONBOID};
	Datum		args[11];
	bool		isnull;

	if (tr->opt.activate)
	{
		run("LOCK TABLE scoring.model IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
			SPI_OK_UTILITY);
		run("UPDATE scoring.model SET active = false WHERE active", 0, NULL, NULL,
			SPI_OK_UPDATE);
	}

	args[0] = TimestampTzGetDatum(since);
	args[1] = TimestampTzGetDatum(until);
	args[2] = Int64GetDatum(tr->nrows);
	args[3] = Int64GetDatum(tr->nwon);
	args[4] = Int64GetDatum(tr->pt.npatterns);
	args[5] = options ? JsonbPGetDatum(options) : jsonb_datum("{}");
	args[6] = Float8GetDatum(beta[0]);
	args[7] = jsonb_datum(weights_json(tr, beta));
	args[8] = jsonb_datum(numeric_json(tr));
	args[9] = jsonb_datum(ltv_json(tr));
	args[10] = jsonb_datum(metrics);
	run(tr->opt.activate ?
		"INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,"
		" n_patterns, options, intercept, weights, numeric_features, ltv, metrics)"
		" VALUES (true, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING model_id" :
		"INSERT INTO scoring.model (active, train_since, train_until, n_rows, n_won,"
		" n_patterns, options, intercept, weights, numeric_features, ltv, metrics)"
		" VALUES (false, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING model_id",
		11, argtypes, args, SPI_OK_INSERT_RETURNING);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/* Replaces the priority bands */
void
store_bands(const double *bands)
{
	Oid			argtypes[4] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID};
	Datum		args[4];
	int			b;

	for (b = 0; b < 4; b++)
		args[b] = Float8GetDatum(bands[b]);
	/* concurrent trains replace the bands one after the other */
	run("LOCK TABLE scoring.priority_band IN SHARE ROW EXCLUSIVE MODE", 0, NULL, NULL,
		SPI_OK_UTILITY);
	run("DELETE FROM scoring.priority_band", 0, NULL, NULL, SPI_OK_DELETE);
	run("INSERT INTO scoring.priority_band (priority, min_expected_profit)"
		" VALUES (1, $1), (2, $2), (3, $3), (4, $4)",
		4, argtypes, args, SPI_OK_INSERT);
}

/*
 * Fails at once, not after reading every lead, when the caller may not add
 * a model, with the error storing it would raise
 */
void
check_store_allowed(void)
{
	Oid			relid = get_relname_relid("model",
										  get_namespace_oid("scoring", false));
	AclResult	acl = pg_class_aclcheck(relid, GetUserId(), ACL_INSERT);

	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, "model");
}

/* Whether any priority band exists */
bool
have_bands(void)
{
	run("SELECT 1 FROM scoring.priority_band LIMIT 1", 0, NULL, NULL, SPI_OK_SELECT);
	return SPI_processed > 0;
}
