/*-------------------------------------------------------------------------
 *
 * predict.c
 *		scoring.predict() and scoring.explain(): scores on demand.
 *
 * predict() scores a would-be lead given as one JSON object; explain()
 * takes a stored lead apart into the contribution of each feature, with the
 * model that scored it, so "why is this lead priority 3?" has an answer.
 *
 * IDENTIFICATION
 *		src/predict.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "scoring.h"

PG_FUNCTION_INFO_V1(scoring_predict);
PG_FUNCTION_INFO_V1(scoring_explain);
PG_FUNCTION_INFO_V1(scoring_predict_lead);

/* A string value of a JSON object, NULL when absent or not a string */
static const char *
json_string(Jsonb *obj, const char *key)
{
	JsonbValue	v;

	if (getKeyJsonValueFromContainer(&obj->root, key, strlen(key), &v) == NULL)
		return NULL;
	if (v.type == jbvString)
		return pnstrdup(v.val.string.val, v.val.string.len);
	if (v.type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v.val.numeric)));
	return NULL;
}

/* Complains that there is no model to score with */
static void
no_model(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SCORING_NO_MODEL),
			 errmsg("no model to score with"),
			 errdetail("%s", detail),
			 errhint("Train one with scoring.train(since, until).")));
}

/*
 * scoring.predict(features jsonb, client_id bigint, model_id int): p_win of
 * a would-be lead.  shop, channel, category, brand and budget are read from
 * the object's top level; free features from its "features" object when it
 * has one, else from the top level itself.
 */
Datum
scoring_predict(PG_FUNCTION_ARGS)
{
	Jsonb	   *obj;
	LeadInput	lead;
	Model	   *model;
	JsonbValue	v;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	obj = PG_GETARG_JSONB_P(0);
	if (!JB_ROOT_IS_OBJECT(obj) || JB_ROOT_IS_SCALAR(obj))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a JSON object"),
				 errhint("Pass the lead as {\"shop\": ..., \"channel\": ..., \"budget\": ..., \"features\": {...}}.")));

	if (PG_ARGISNULL(2))
	{
		model = scoring_config()->model;
		if (model == NULL)
			no_model("No model is active.");
	}
	else
	{
		model = load_model(PG_GETARG_INT32(2));
		if (model == NULL)
			no_model(psprintf("Model %d does not exist.", PG_GETARG_INT32(2)));
	}

	memset(&lead, 0, sizeof(lead));
	lead.client_core = -1;
	lead.shop = json_string(obj, "shop");
	lead.channel = json_string(obj, "channel");
	lead.category = json_string(obj, "category");
	lead.brand = json_string(obj, "brand");
	if (getKeyJsonValueFromContainer(&obj->root, "budget", 6, &v) != NULL &&
		v.type == jbvNumeric)
		lead.budget = v.val.numeric;
	lead.features = obj;
	if (getKeyJsonValueFromContainer(&obj->root, "features", 8, &v) != NULL &&
		v.type == jbvBinary && JsonContainerIsObject(v.val.binary.data))
		lead.features = JsonbValueToJsonb(&v);

	if (!PG_ARGISNULL(1))
		lead_input_from_client(&lead, PG_GETARG_INT64(1),
							   GetCurrentTransactionStartTimestamp(), NULL, false);

	PG_RETURN_FLOAT8(logistic(model_logit(model, &lead, NULL)));
}

/* Orders contributions by size, largest effect first; equal ones by name */
static int
contribution_cmp(const ListCell *a, const ListCell *b)
{
	const Contribution *ca = lfirst(a);
	const Contribution *cb = lfirst(b);
	double		x = fabs(ca->contribution);
	double		y = fabs(cb->contribution);

	if (x != y)
		return (x < y) - (x > y);
	return strcmp(ca->feature, cb->feature);
}

/* Reads a stored lead's inputs; returns its model id (0: none) */
static int32
read_stored_lead(int64 lead_id, LeadInput *lead)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1] = {Int64GetDatum(lead_id)};
	MemoryContext caller = CurrentMemoryContext;
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	Datum		d;
	int32		model = 0;
	int64		client_id = 0;
	TimestampTz created_at = 0;

	SPI_connect();
	if (SPI_execute_with_args("SELECT shop, channel, category, brand, budget,"
							  "       features, client_id, created_at, model_id"
							  "  FROM scoring.lead WHERE lead_id = $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read lead " INT64_FORMAT, lead_id);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("lead " INT64_FORMAT " does not exist", lead_id)));

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	MemoryContextSwitchTo(caller);
	memset(lead, 0, sizeof(LeadInput));
	lead->lead_id = lead_id;
	lead->client_core = -1;
	lead->shop = SPI_getvalue(tup, desc, 1);
	lead->channel = SPI_getvalue(tup, desc, 2);
	lead->category = SPI_getvalue(tup, desc, 3);
	lead->brand = SPI_getvalue(tup, desc, 4);
	d = SPI_getbinval(tup, desc, 5, &isnull);
	lead->budget = isnull ? NULL : DatumGetNumericCopy(d);
	d = SPI_getbinval(tup, desc, 6, &isnull);
	lead->features = isnull ? NULL : DatumGetJsonbPCopy(d);
	d = SPI_getbinval(tup, desc, 7, &isnull);
	if (!isnull)
		client_id = DatumGetInt64(d);
	created_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
	d = SPI_getbinval(tup, desc, 9, &isnull);
	if (!isnull)
		model = DatumGetInt32(d);
	SPI_finish();

	if (client_id != 0)
		lead_input_from_client(lead, client_id, created_at, NULL, false);
	return model;
}

/*
 * scoring.explain(lead_id): each feature's contribution to the lead's
 * log-odds under the model that scored it, largest first.
 */
Datum
scoring_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		lead_id = PG_GETARG_INT64(0);
	LeadInput	lead;
	int32		mid;
	Model	   *model;
	List	   *contributions = NIL;
	TupleDesc	tupdesc;
	Tuplestorestate *store;
	MemoryContext oldcxt;
	ListCell   *lc;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("set-valued function called in context that cannot accept a set")));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	mid = read_stored_lead(lead_id, &lead);
	if (mid == 0)
		no_model(psprintf("Lead " INT64_FORMAT " was scored without a model.",
						  lead_id));
	model = load_model(mid);
	if (model == NULL)
		no_model(psprintf("Model %d that scored lead " INT64_FORMAT " no longer exists.",
						  mid, lead_id));
	model_logit(model, &lead, &contributions);
	list_sort(contributions, contribution_cmp);

	oldcxt = MemoryContextSwitchTo(rsinfo->econtext->ecxt_per_query_memory);
	tupdesc = CreateTupleDescCopy(tupdesc);
	store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(oldcxt);

	foreach(lc, contributions)
	{
		Contribution *c = (Contribution *) lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false, c->value == NULL, false};

		values[0] = CStringGetTextDatum(c->feature);
		values[1] = c->value ? CStringGetTextDatum(c->value) : (Datum) 0;
		values[2] = Float8GetDatum(c->contribution);
		tuplestore_putvalues(store, tupdesc, values, nulls);
	}

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = store;
	rsinfo->setDesc = tupdesc;
	return (Datum) 0;
}

/*
 * scoring.predict_lead(lead_id, model_id): p_win of a stored lead under a
 * given model, from what was known at the lead's entry; for backtests.
 */
Datum
scoring_predict_lead(PG_FUNCTION_ARGS)
{
	int64		lead_id = PG_GETARG_INT64(0);
	int32		mid = PG_GETARG_INT32(1);
	LeadInput	lead;
	Model	   *model;

	(void) read_stored_lead(lead_id, &lead);
	model = load_model(mid);
	if (model == NULL)
		no_model(psprintf("Model %d does not exist.", mid));
	PG_RETURN_FLOAT8(logistic(model_logit(model, &lead, NULL)));
}
