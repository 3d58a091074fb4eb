/*-------------------------------------------------------------------------
 *
 * cache.c
 *		The active model and the scoring configuration of this backend.
 *
 * Scoring a lead needs the active model, brand margins, priority bands,
 * refusal rules and a few settings.  They are read once into a long-lived
 * memory context and kept until something changes: a statement trigger on
 * each of those tables (scoring.config_changed) sends a relcache
 * invalidation for scoring.model, which every backend receives when the
 * change commits (and this backend at once); the callback only marks the
 * cache stale, and the next lead reloads it.  No lead looks anything up in
 * the catalog.
 *
 * The reload reads with a fresh snapshot (SPI in non-read-only mode), so a
 * model activated while a long INSERT runs is used by the rows after it.
 * Under REPEATABLE READ the transaction's snapshot may hide a committed
 * change, so a cache loaded there lives only until the transaction ends.
 *
 * IDENTIFICATION
 *		src/cache.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "scoring.h"

/* A brand's margin */
typedef struct BrandEntry
{
	const char *brand;
	uint32		hash;
	char		status;
	Numeric		margin;
	double		margin_double;
} BrandEntry;

#define SH_PREFIX		brandmargin
#define SH_ELEMENT_TYPE BrandEntry
#define SH_KEY			brand
#include "strhash.h"

struct BrandMarginHash
{
	brandmargin_hash *hash;
};

static MemoryContext ConfigContext = NULL;
static ScoringConfig *Config = NULL;
static bool ConfigValid = false;

/* loaded under a transaction snapshot: stale once the transaction ends */
static bool ConfigTransient = false;

/* Counts loads of the configuration, so other caches know it changed */
static uint64 ConfigGeneration = 0;

/* The last model other than the active one that was asked for */
static MemoryContext OtherModelContext = NULL;
static Model *OtherModel = NULL;
static int32 OtherModelId = 0;
static uint64 OtherModelGeneration = 0;

/* scoring.model's OID: the relation whose invalidation means "reload" */
static Oid	AnchorRelid = InvalidOid;

PG_FUNCTION_INFO_V1(scoring_config_changed);

/* Marks the cache stale when scoring.model (or everything) is invalidated */
static void
config_invalidate(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == AnchorRelid)
		ConfigValid = false;
}

/* Drops a cache that was read under a transaction snapshot */
static void
config_xact_end(XactEvent event, void *arg)
{
	if (ConfigTransient && (event == XACT_EVENT_COMMIT ||
							event == XACT_EVENT_ABORT ||
							event == XACT_EVENT_PARALLEL_COMMIT ||
							event == XACT_EVENT_PARALLEL_ABORT))
	{
		ConfigValid = false;
		ConfigTransient = false;
	}
}

/* Registers the invalidation callbacks; called from _PG_init */
void
scoring_cache_init(void)
{
	CacheRegisterRelcacheCallback(config_invalidate, (Datum) 0);
	RegisterXactCallback(config_xact_end, NULL);
}

/* Looks up scoring.model's OID */
static Oid
anchor_relid(void)
{
	Oid			nsp = get_namespace_oid("scoring", false);

	return get_relname_relid("model", nsp);
}

/*
 * Statement trigger on the configuration tables: every backend drops its
 * cache when this transaction commits, this one at the next command.
 */
Datum
scoring_config_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			relid;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("scoring.config_changed() must be called as a trigger")));

	relid = get_relname_relid("model",
							  RelationGetNamespace(trigdata->tg_relation));
	if (OidIsValid(relid))
		CacheInvalidateRelcacheByRelid(relid);
	PG_RETURN_POINTER(NULL);
}

/* Copies a numeric datum into the current memory context */
static Numeric
copy_numeric(Datum d)
{
	return DatumGetNumericCopy(d);
}

/* Reads one value of a result row as text, NULL when SQL NULL */
static char *
get_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/*
 * Reads the model row with the given id (or the active one when model_id
 * is 0) and builds it in CurrentMemoryContext.  The caller is connected to
 * SPI.  Returns NULL when there is no such model.
 */
static Model *
read_model(int32 model_id)
{
	Oid			argtypes[1] = {INT4OID};
	Datum		args[1] = {Int32GetDatum(model_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext spi;
	Model	   *model;

	if (SPI_execute_with_args(model_id == 0 ?
							  "SELECT model_id, intercept, weights, numeric_features, ltv"
							  " FROM scoring.model WHERE active" :
							  "SELECT model_id, intercept, weights, numeric_features, ltv"
							  " FROM scoring.model WHERE model_id = $1",
							  model_id == 0 ? 0 : 1, argtypes, args, NULL,
							  true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read scoring.model");
	if (SPI_processed == 0)
		return NULL;

	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	spi = MemoryContextSwitchTo(caller);
	model = model_build(DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull)),
						DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull)),
						DatumGetJsonbP(SPI_getbinval(tup, desc, 3, &isnull)),
						DatumGetJsonbP(SPI_getbinval(tup, desc, 4, &isnull)),
						DatumGetJsonbP(SPI_getbinval(tup, desc, 5, &isnull)));
	MemoryContextSwitchTo(spi);
	return model;
}

/*
 * Reads a model by id, not cached, in CurrentMemoryContext.
 */
static Model *
load_model_uncached(int32 model_id)
{
	Model	   *model;
	MemoryContext caller = CurrentMemoryContext;

	SPI_connect();
	MemoryContextSwitchTo(caller);
	model = read_model(model_id);
	SPI_finish();
	return model;
}

/* Runs a read-only query, complaining if it fails */
static void
run_query(const char *sql)
{
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not run \"%s\"", sql);
}

/* Reads brand margins into the cache */
static void
read_brands(ScoringConfig *config)
{
	uint64		i;

	run_query("SELECT brand, margin FROM scoring.brand");
	MemoryContextSwitchTo(ConfigContext);
	config->brands = palloc(sizeof(struct BrandMarginHash));
	config->brands->hash = brandmargin_create(ConfigContext,
											  Max(SPI_processed, 16), NULL);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull,
					found;
		char	   *brand = get_text(tup, SPI_tuptable->tupdesc, 1);
		BrandEntry *e = brandmargin_insert(config->brands->hash, brand, &found);

		e->margin = copy_numeric(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2,
											   &isnull));
		/* a margin is NOT NULL and within [0, 1] */
		if (!numeric_to_finite_double(e->margin, &e->margin_double))
			e->margin_double = 0;
	}
}

/* Reads the priority bands, best first */
static void
read_bands(ScoringConfig *config)
{
	uint64		i;

	run_query("SELECT priority, min_expected_profit FROM scoring.priority_band"
			  " ORDER BY priority");
	MemoryContextSwitchTo(ConfigContext);
	config->nbands = (int) Min(SPI_processed, 4);
	for (i = 0; i < (uint64) config->nbands; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		config->band_priority[i] =
			DatumGetInt16(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		config->band_min[i] =
			copy_numeric(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
	}
}

/* Reads and compiles the active refusal rules */
static void
read_rules(ScoringConfig *config)
{
	uint64		i;

	run_query("SELECT name, condition FROM scoring.refusal_rule WHERE active"
			  " ORDER BY name");
	MemoryContextSwitchTo(ConfigContext);
	config->nrules = (int) SPI_processed;
	config->rule_names = palloc0(sizeof(char *) * (SPI_processed + 1));
	config->rules = palloc0(sizeof(Condition *) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		bool		isnull;

		config->rule_names[i] = get_text(tup, SPI_tuptable->tupdesc, 1);
		config->rules[i] = condition_compile(
			DatumGetJsonbP(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull)));
	}
}

/* Reads the routes in force, defaults included, in position order */
static void
read_routes(ScoringConfig *config)
{
	uint64		i;

	run_query("SELECT position, condition, tier, required_skill FROM scoring.routes"
			  " ORDER BY position");
	MemoryContextSwitchTo(ConfigContext);
	config->nroutes = (int) SPI_processed;
	config->routes = palloc0(sizeof(RouteRule) * (SPI_processed + 1));
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RouteRule  *r = &config->routes[i];
		bool		isnull;

		r->position = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
		r->condition = condition_compile(DatumGetJsonbP(SPI_getbinval(tup, desc, 2,
																	   &isnull)));
		r->tier = get_text(tup, desc, 3);
		r->skill = get_text(tup, desc, 4);
	}
}

/*
 * Reads the settings scoring and routing use, in one query.  Their values
 * were checked when they were stored (scoring.setting_valid).
 */
static void
read_settings(ScoringConfig *config)
{
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull[6];
	Datum		d[6];
	char	   *balance_by;
	int			i;

	run_query("SELECT max((value #>> '{}')::numeric) FILTER (WHERE name = 'default_margin'),"
			  "       max((value #>> '{}')::numeric) FILTER (WHERE name = 'max_budget'),"
			  "       max((extract(epoch FROM (value #>> '{}')::interval) * 1e6)::int8)"
			  "           FILTER (WHERE name = 'presence_timeout'),"
			  "       max((extract(epoch FROM (value #>> '{}')::interval) * 1e6)::int8)"
			  "           FILTER (WHERE name = 'shift_guard'),"
			  "       max((extract(epoch FROM (value #>> '{}')::interval) * 1e6)::int8)"
			  "           FILTER (WHERE name = 'accept_timeout'),"
			  "       max(value #>> '{}') FILTER (WHERE name = 'balance_by')"
			  "  FROM scoring.settings");
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	for (i = 0; i < 6; i++)
	{
		d[i] = SPI_getbinval(tup, desc, i + 1, &isnull[i]);
		if (isnull[i])
			elog(ERROR, "a setting of scoring.settings is missing");
	}
	MemoryContextSwitchTo(ConfigContext);
	config->default_margin = copy_numeric(d[0]);
	config->max_budget = copy_numeric(d[1]);
	config->presence_timeout = DatumGetInt64(d[2]);
	config->shift_guard = DatumGetInt64(d[3]);
	config->accept_timeout = DatumGetInt64(d[4]);
	balance_by = TextDatumGetCString(d[5]);
	config->balance_by_profit = strcmp(balance_by, "expected_profit") == 0;
}

/* Reads everything scoring needs into a fresh ConfigContext */
static void
config_load(void)
{
	ScoringConfig *config;

	if (ConfigContext == NULL)
		ConfigContext = AllocSetContextCreate(CacheMemoryContext,
											  "scoring config cache",
											  ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(ConfigContext);
	Config = NULL;

	/* set before reading, so that a change committed meanwhile wins */
	ConfigValid = true;
	ConfigGeneration++;
	ConfigTransient = IsolationUsesXactSnapshot();
	AnchorRelid = anchor_relid();

	SPI_connect();
	MemoryContextSwitchTo(ConfigContext);
	config = palloc0(sizeof(ScoringConfig));
	config->model = read_model(0);
	read_brands(config);
	read_bands(config);
	read_rules(config);
	read_settings(config);
	read_routes(config);
	SPI_finish();

	Config = config;
}

/*
 * The configuration of this backend, reloaded when it has changed.  The
 * result stays valid until the next call.
 */
ScoringConfig *
scoring_config(void)
{
	if (!ConfigValid || Config == NULL)
	{
		PG_TRY();
		{
			config_load();
		}
		PG_CATCH();
		{
			ConfigValid = false;
			PG_RE_THROW();
		}
		PG_END_TRY();
	}
	return Config;
}

/*
 * The margin of a brand into *margin and, as a double, into *margin_double
 * (either may be NULL); false when the brand is unknown.
 */
bool
brand_margin(ScoringConfig *config, const char *brand, Numeric *margin,
			 double *margin_double)
{
	BrandEntry *e;

	if (brand == NULL)
		return false;
	e = brandmargin_lookup(config->brands->hash, brand);
	if (e == NULL)
		return false;
	if (margin != NULL)
		*margin = e->margin;
	if (margin_double != NULL)
		*margin_double = e->margin_double;
	return true;
}

/*
 * A model by id, for predict(), explain() and backtests: the active one
 * from the configuration, else the last other one asked for, kept until
 * the configuration changes.  NULL when there is no such model.
 */
Model *
load_model(int32 id)
{
	ScoringConfig *config = scoring_config();
	MemoryContext old;

	if (config->model != NULL && model_id(config->model) == id)
		return config->model;
	if (OtherModel != NULL && OtherModelId == id &&
		OtherModelGeneration == ConfigGeneration)
		return OtherModel;

	if (OtherModelContext == NULL)
		OtherModelContext = AllocSetContextCreate(CacheMemoryContext,
												  "scoring other model",
												  ALLOCSET_DEFAULT_SIZES);
	else
		MemoryContextReset(OtherModelContext);
	OtherModel = NULL;
	old = MemoryContextSwitchTo(OtherModelContext);
	OtherModel = load_model_uncached(id);
	MemoryContextSwitchTo(old);
	OtherModelId = id;
	OtherModelGeneration = ConfigGeneration;
	return OtherModel;
}
