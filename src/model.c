/*-------------------------------------------------------------------------
 *
 * model.c
 *		A trained model in memory: built from its row, scores leads.
 *
 * A model row stores its coefficients as JSON: "field=level" for a level of
 * a category, "field" for a standardised number, "field=[a, b)" for a range
 * of a number (bins.c).  model_build() checks the
 * row and turns it into hash tables, one entry per field holding what the
 * model knows of it (its levels' coefficients in a table of their own, a
 * number's scaling); model_logit() walks a lead's features and adds up the
 * coefficients, optionally recording each term for explain().  Scoring
 * finds a field by the address of the name it is passed, kept in a few
 * slots and checked against the name (the names are constants and the
 * model's own strings, so the same addresses come back lead after lead),
 * then the level in the field's table: no "field=level" key is built, and
 * the level alone is hashed.  The same check guards hand edits of
 * scoring.model through the model_valid CHECK constraint.
 *
 * IDENTIFICATION
 *		src/model.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "bins.h"
#include "scoring.h"

/* A coefficient (or an uplift) by name */
typedef struct WeightEntry
{
	const char *key;
	uint32		hash;
	char		status;
	double		weight;
	Numeric		amount;			/* uplifts only: the uplift in kopecks */
} WeightEntry;

#define SH_PREFIX		weights
#define SH_ELEMENT_TYPE WeightEntry
#define SH_KEY			key
#include "strhash.h"

/* How a numeric feature is standardised, with the range seen in training */
typedef struct NumericSpec
{
	const char *key;
	uint32		hash;
	char		status;
	double		mean;
	double		std;
	double		min;
	double		max;
	bool		log;			/* of the signed log of the value */
	/* its ranges (bins.c): ncuts cuts, a coefficient per range or none */
	int			ncuts;
	float4	   *bounds;
	char	  **bin_names;		/* "[31, 36)" */
	double	   *bin_weight;
	bool	   *has_bin_weight;
} NumericSpec;

#define SH_PREFIX		numspec
#define SH_ELEMENT_TYPE NumericSpec
#define SH_KEY			key
#include "strhash.h"

/* A level of a field by its bytes, which need not end in a NUL */
typedef struct LevelKey
{
	const char *s;
	int			len;
} LevelKey;

/* The coefficient of one level of a field */
typedef struct LevelEntry
{
	LevelKey	key;
	uint32		hash;
	char		status;
	double		weight;
} LevelEntry;

#define SH_PREFIX		levels
#define SH_ELEMENT_TYPE LevelEntry
#define SH_KEY_TYPE		LevelKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).s, (k).len)
#define SH_EQUAL(tb, a, b) ((a).len == (b).len && memcmp((a).s, (b).s, (a).len) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* What the model knows of a field */
typedef struct FieldEntry
{
	const char *key;			/* the field's name */
	uint32		hash;
	char		status;
	levels_hash *levels;		/* "field=level" coefficients, by level */
	LevelEntry *other;			/* "field=(other)", or NULL */
	LevelEntry *missing;		/* "field=(missing)", or NULL */
	WeightEntry *linear;		/* "field": a number's own coefficient */
	NumericSpec *spec;			/* a number's scaling */
} FieldEntry;

#define SH_PREFIX		fields
#define SH_ELEMENT_TYPE FieldEntry
#define SH_KEY			key
#include "strhash.h"

/*
 * A field scoring asked for, by the address of the name it was passed:
 * field is NULL when the model knows nothing of it
 */
typedef struct FieldSlot
{
	const char *name;
	FieldEntry *field;
	char		copy[NAMEDATALEN];	/* the name, to check a slot against */
} FieldSlot;

#define FIELD_SLOTS		64
#define FIELD_PROBES	4

struct Model
{
	int32		model_id;
	double		intercept;
	weights_hash *weights;		/* "field=level" and "field" coefficients */
	numspec_hash *numeric;		/* numeric fields and their scaling */
	fields_hash *fields;		/* the two above by field, once loaded */
	weights_hash *ltv;			/* lifetime uplift by client segment */
	Numeric		no_ltv;			/* 0.00: a segment without uplift */
	FreeField  *free_fields;	/* distinct "features.KEY" fields */
	int			nfree;
	FieldSlot	slots[FIELD_SLOTS];
};

/* The sink that adds up a lead's logit */
typedef struct ScoreSink
{
	FeatureSink sink;
	Model	   *model;
	double		logit;
	List	   *contributions;	/* of Contribution *, or NIL */
	bool		explain;
} ScoreSink;

#define FEATURES_PREFIX "features."

static FieldEntry *find_field(Model *model, const char *name);
static LevelEntry *find_level(FieldEntry *field, const char *level, int len);

/* Raises the error of a model row that cannot be used */
static void
invalid_model(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_SCORING_INVALID_MODEL),
			 errmsg("invalid model"),
			 errdetail("%s", detail),
			 errhint("Models are written by scoring.train(); edit a model row only to adjust coefficients.")));
}

/* Reads a JSON number as a finite double, or complains naming what */
static double
finite_number(JsonbValue *v, const char *what, const char *name)
{
	double		d;

	if (v == NULL || v->type != jbvNumeric ||
		!numeric_to_finite_double(v->val.numeric, &d))
		invalid_model(psprintf("%s \"%s\" is not a finite number.", what, name));
	return d;
}

/* Reads a field of a numeric spec object */
static double
spec_field(JsonbContainer *spec, const char *field, const char *name)
{
	JsonbValue *v = getKeyJsonValueFromContainer(spec, field, strlen(field),
												 NULL);

	return finite_number(v, psprintf("numeric feature %s", field), name);
}

/*
 * Calls fn for each key/value pair of a JSON object, complaining when the
 * document is not an object.
 */
static void
for_each_pair(Jsonb *obj, const char *what,
			  void (*fn) (Model *model, char *key, JsonbValue *v),
			  Model *model)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (obj == NULL || !JB_ROOT_IS_OBJECT(obj) || JB_ROOT_IS_SCALAR(obj))
		invalid_model(psprintf("%s must be a JSON object.", what));

	it = JsonbIteratorInit(&obj->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
			key = pnstrdup(v.val.string.val, v.val.string.len);
		else if (tok == WJB_VALUE)
			fn(model, key, &v);
	}
}

/* Adds one coefficient */
static void
add_weight(Model *model, char *key, JsonbValue *v)
{
	bool		found;
	WeightEntry *e;
	double		w = finite_number(v, "weight", key);

	e = weights_insert(model->weights, key, &found);
	e->weight = w;
}

/* An uplift as leads store it: the double rounded to kopecks */
static Numeric
kopecks(double w)
{
	Datum		n = DirectFunctionCall1(float8_numeric, Float8GetDatum(w));

	return DatumGetNumeric(DirectFunctionCall2(numeric_round, n,
											   Int32GetDatum(2)));
}

/*
 * Adds one lifetime uplift, also in kopecks: every lead of the segment
 * stores that amount, converted once here.
 */
static void
add_ltv(Model *model, char *key, JsonbValue *v)
{
	bool		found;
	WeightEntry *e;
	double		w = finite_number(v, "ltv uplift of segment", key);

	if (w < 0)
		invalid_model(psprintf("ltv uplift of segment \"%s\" is negative.", key));
	e = weights_insert(model->ltv, key, &found);
	e->weight = w;
	e->amount = kopecks(w);
}

/*
 * Reads the optional "cuts" of a numeric feature (bins.c) and finds the
 * coefficient of each range among the weights, read before.
 */
static void
add_cuts(Model *model, NumericSpec *e, JsonbContainer *spec)
{
	JsonbValue *cuts = getKeyJsonValueFromContainer(spec, "cuts", 4, NULL);
	FieldEntry *field;
	char	  **texts;
	int			n,
				b;

	e->ncuts = 0;
	if (cuts == NULL)
		return;
	if (cuts->type != jbvBinary || !JsonContainerIsArray(cuts->val.binary.data) ||
		(n = JsonContainerSize(cuts->val.binary.data)) > BINS_MAX - 1)
		invalid_model(psprintf("numeric feature \"%s\": cuts must be an array of at most %d numbers.",
							   e->key, BINS_MAX - 1));
	if (n == 0)
		return;
	texts = palloc(sizeof(char *) * n);
	e->bounds = palloc(sizeof(float4) * n);
	for (b = 0; b < n; b++)
	{
		JsonbValue *v = getIthJsonbValueFromContainer(cuts->val.binary.data, b);

		e->bounds[b] = bin_bound(finite_number(v, "cut of numeric feature", e->key));
		if (b > 0 && e->bounds[b] <= e->bounds[b - 1])
			invalid_model(psprintf("numeric feature \"%s\": cuts must increase.", e->key));
		texts[b] = DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
	}
	e->ncuts = n;
	e->bin_names = palloc(sizeof(char *) * (n + 1));
	e->bin_weight = palloc(sizeof(double) * (n + 1));
	e->has_bin_weight = palloc(sizeof(bool) * (n + 1));
	field = fields_lookup(model->fields, e->key);
	for (b = 0; b <= n; b++)
	{
		LevelEntry *w = NULL;

		e->bin_names[b] = bin_label(texts, n, b);
		if (field != NULL)
			w = find_level(field, e->bin_names[b], strlen(e->bin_names[b]));
		e->has_bin_weight[b] = w != NULL;
		e->bin_weight[b] = w ? w->weight : 0;
	}
}

/* Adds the scaling of one numeric feature */
static void
add_numeric(Model *model, char *key, JsonbValue *v)
{
	bool		found;
	NumericSpec *e;
	JsonbContainer *spec;
	JsonbValue *lg;
	double		mean,
				std,
				min,
				max;

	if (v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
		invalid_model(psprintf("numeric feature \"%s\" must be an object with mean, std, min and max.", key));
	spec = v->val.binary.data;
	mean = spec_field(spec, "mean", key);
	std = spec_field(spec, "std", key);
	min = spec_field(spec, "min", key);
	max = spec_field(spec, "max", key);
	if (std <= 0 || min > max)
		invalid_model(psprintf("numeric feature \"%s\" needs std > 0 and min <= max.", key));

	e = numspec_insert(model->numeric, key, &found);
	e->mean = mean;
	e->std = std;
	e->min = min;
	e->max = max;

	/* "log" may be absent: models of 0.1.0 before it took logs always */
	lg = getKeyJsonValueFromContainer(spec, "log", 3, NULL);
	if (lg != NULL && lg->type != jbvBool)
		invalid_model(psprintf("numeric feature \"%s\": log must be true or false.", key));
	e->log = lg == NULL || lg->val.boolean;
	add_cuts(model, e, spec);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * The entry of a field, made when it has none yet; name must live as long
 * as the model (the entry keeps it)
 */
static FieldEntry *
field_entry(Model *model, const char *name)
{
	bool		found;
	FieldEntry *f = fields_insert(model->fields, name, &found);

	if (!found)
	{
		f->levels = NULL;
		f->other = f->missing = NULL;
		f->linear = NULL;
		f->spec = NULL;
	}
	return f;
}

/*
 * Files every coefficient under its field: "field=level" as a level (a
 * field's name has no '=': features.c escapes those of keys), "field" as
 * a number's own.  The weights table is complete, so the entries stay
 * where they are.
 */
static void
index_weights(Model *model)
{
	weights_iterator it;
	WeightEntry *e;

	weights_start_iterate(model->weights, &it);
	while ((e = weights_iterate(model->weights, &it)) != NULL)
	{
		const char *eq = strchr(e->key, '=');
		char	   *name = eq ? pnstrdup(e->key, eq - e->key) : (char *) e->key;
		FieldEntry *f = field_entry(model, name);
		LevelEntry *level;
		LevelKey	key;
		bool		found;

		if (eq == NULL)
		{
			f->linear = e;
			continue;
		}
		if (f->levels == NULL)
			f->levels = levels_create(CurrentMemoryContext, 8, NULL);
		key.s = eq + 1;
		key.len = strlen(eq + 1);
		level = levels_insert(f->levels, key, &found);
		level->weight = e->weight;
	}
}

/*
 * Gives each field its "(other)" and "(missing)" levels and its scaling,
 * once every table is complete (an entry moves when its table grows)
 */
static void
index_fields(Model *model)
{
	numspec_iterator nit;
	NumericSpec *spec;
	fields_iterator it;
	FieldEntry *f;

	numspec_start_iterate(model->numeric, &nit);
	while ((spec = numspec_iterate(model->numeric, &nit)) != NULL)
		field_entry(model, spec->key)->spec = spec;

	fields_start_iterate(model->fields, &it);
	while ((f = fields_iterate(model->fields, &it)) != NULL)
	{
		f->other = find_level(f, LEVEL_OTHER, strlen(LEVEL_OTHER));
		f->missing = find_level(f, LEVEL_MISSING, strlen(LEVEL_MISSING));
	}
}

/*
 * Collects the distinct free fields ("features.KEY") the model has any
 * coefficient for, so that scoring looks up only those keys of a lead.
 * A field ends at the first '=' after its prefix: keys have theirs
 * escaped (features.c).
 */
static void
collect_free_fields(Model *model)
{
	weights_iterator it;
	WeightEntry *e;
	int			n = 0,
				i,
				distinct = 0;
	const char **all = palloc(sizeof(char *) * Max(model->weights->members, 1));

	weights_start_iterate(model->weights, &it);
	while ((e = weights_iterate(model->weights, &it)) != NULL)
	{
		const char *eq;

		if (strncmp(e->key, FEATURES_PREFIX, sizeof(FEATURES_PREFIX) - 1) != 0)
			continue;
		eq = strchr(e->key + sizeof(FEATURES_PREFIX) - 1, '=');
		all[n++] = eq ? pnstrdup(e->key, eq - e->key) : pstrdup(e->key);
	}
	qsort(all, n, sizeof(char *), str_cmp);
	for (i = 0; i < n; i++)
		if (distinct == 0 || strcmp(all[distinct - 1], all[i]) != 0)
			all[distinct++] = all[i];
	model->free_fields = palloc(sizeof(FreeField) * Max(distinct, 1));
	for (i = 0; i < distinct; i++)
		free_field_init(&model->free_fields[i], all[i]);
	model->nfree = distinct;
}

/*
 * Builds a model from the columns of its row, in CurrentMemoryContext.
 * Raises ERRCODE_SCORING_INVALID_MODEL when the row cannot be used.
 */
Model *
model_build(int32 model_id, double intercept, Jsonb *weights,
			Jsonb *numeric_features, Jsonb *ltv)
{
	Model	   *model = palloc0(sizeof(Model));

	if (!isfinite(intercept))
		invalid_model("intercept is not a finite number.");
	model->model_id = model_id;
	model->intercept = intercept;
	model->weights = weights_create(CurrentMemoryContext, 256, NULL);
	model->numeric = numspec_create(CurrentMemoryContext, 32, NULL);
	model->fields = fields_create(CurrentMemoryContext, 64, NULL);
	model->ltv = weights_create(CurrentMemoryContext, 16, NULL);
	model->no_ltv = kopecks(0.0);

	for_each_pair(weights, "weights", add_weight, model);
	index_weights(model);
	for_each_pair(numeric_features, "numeric_features", add_numeric, model);
	index_fields(model);
	for_each_pair(ltv, "ltv", add_ltv, model);
	collect_free_fields(model);
	return model;
}

int32
model_id(const Model *model)
{
	return model->model_id;
}

/* The standard logistic function, safe for any finite logit */
double
logistic(double logit)
{
	if (logit >= 0)
		return 1.0 / (1.0 + exp(-logit));
	else
	{
		double		e = exp(logit);

		return e / (1.0 + e);
	}
}

/* Records one term of the score when explaining */
static void
note(ScoreSink *s, const char *field, const char *value, double contribution)
{
	Contribution *c;

	if (!s->explain)
		return;
	c = palloc(sizeof(Contribution));
	c->feature = pstrdup(field);
	c->value = value ? pstrdup(value) : NULL;
	c->contribution = contribution;
	s->contributions = lappend(s->contributions, c);
}

/*
 * The field named name, NULL when the model knows nothing of it.  Scoring
 * passes the same few dozen names, at the same addresses, lead after lead:
 * a slot keeps a name's field by its address, checked against a copy of
 * the name (a buffer may hold another name at the same address).  A name
 * is kept in the slot its address hashes to or one of the next
 * FIELD_PROBES - 1, the first one free (else the first), so that two names
 * hashed to one slot do not take it from each other on every lead.
 */
static FieldEntry *
find_field(Model *model, const char *name)
{
	/* the top 6 bits of a multiplicative hash of the address */
	uint64		addr = (uint64) (uintptr_t) name;
	int			first = (addr * UINT64CONST(0x9E3779B97F4A7C15)) >> 58;
	FieldSlot  *slot = &model->slots[first];
	int			i;

	StaticAssertStmt(FIELD_SLOTS == 64, "a slot is named by 6 bits");
	for (i = 0; i < FIELD_PROBES; i++)
	{
		FieldSlot  *s = &model->slots[(first + i) % FIELD_SLOTS];

		if (s->name == NULL)
		{
			slot = s;
			break;
		}
		if (s->name == name && strcmp(s->copy, name) == 0)
			return s->field;
	}
	if (strlen(name) >= NAMEDATALEN)
		return fields_lookup(model->fields, name);
	slot->name = name;
	slot->field = fields_lookup(model->fields, name);
	strcpy(slot->copy, name);
	return slot->field;
}

/* A level of a field, len bytes long; NULL when it has no coefficient */
static LevelEntry *
find_level(FieldEntry *field, const char *level, int len)
{
	LevelKey	key;

	if (field->levels == NULL)
		return NULL;
	key.s = level;
	key.len = len;
	return levels_lookup(field->levels, key);
}

/* Adds a category: its level's coefficient, else the pooled "(other)" one */
static void
score_category(FeatureSink *sink, const char *field, const char *level,
			   int len)
{
	ScoreSink  *s = (ScoreSink *) sink;
	FieldEntry *f = find_field(s->model, field);
	LevelEntry *e;

	if (f == NULL)
		return;
	if (level == NULL)
	{
		level = LEVEL_MISSING;
		len = strlen(LEVEL_MISSING);
		e = f->missing;
	}
	else if ((e = find_level(f, level, len)) == NULL)
		e = f->other;
	if (e == NULL)
		return;
	s->logit += e->weight;
	if (s->explain)
		note(s, field, pnstrdup(level, len), e->weight);
}

/*
 * A number as a person reads it: whole numbers in full (a budget of
 * 20000000, not 2e+07), others to six significant digits.
 */
static char *
number_text(double value)
{
	if (value == rint(value) && fabs(value) < 1e15)
		return psprintf("%.0f", value);
	return psprintf("%.6g", value);
}

/*
 * Adds a number: standardised within the range seen in training, and the
 * coefficient of the range it falls in
 */
static void
score_number(FeatureSink *sink, const char *field, double value)
{
	ScoreSink  *s = (ScoreSink *) sink;
	FieldEntry *f = find_field(s->model, field);
	NumericSpec *spec = f ? f->spec : NULL;
	WeightEntry *e;
	double		term = 0;
	const char *range = NULL;
	bool		any = false;

	if (spec == NULL)
		return;
	if ((e = f->linear) != NULL)
	{
		double		t = spec->log ? feature_transform(value) : value;

		t = Max(spec->min, Min(spec->max, t));
		term += e->weight * (t - spec->mean) / spec->std;
		any = true;
	}
	if (spec->ncuts > 0)
	{
		int			b = bin_of(spec->bounds, spec->ncuts, value);

		if (spec->has_bin_weight[b])
		{
			term += spec->bin_weight[b];
			range = spec->bin_names[b];
			any = true;
		}
	}
	if (!any)
		return;
	s->logit += term;
	/* one term per number for explain(): its line and its range together */
	if (s->explain)
	{
		char	   *shown = number_text(value);

		note(s, field, range ? psprintf("%s in %s", shown, range) : shown, term);
	}
}

/*
 * The log-odds of winning a lead.  With contributions non-NULL, every term
 * (intercept included) is appended to *contributions.
 */
double
model_logit(const Model *model, const LeadInput *lead, List **contributions)
{
	ScoreSink	s;

	s.sink.category = score_category;
	s.sink.number = score_number;
	s.sink.free_field = NULL;
	s.model = (Model *) model;
	s.logit = model->intercept;
	s.explain = contributions != NULL;
	s.contributions = NIL;
	note(&s, "(intercept)", NULL, model->intercept);

	features_emit_fixed(lead, &s.sink);
	features_emit_free(lead->features, model->free_fields, model->nfree,
					   &s.sink);

	if (contributions)
		*contributions = s.contributions;
	return s.logit;
}

/*
 * The lifetime uplift of a client segment in kopecks (0.00 when the model
 * has none), as a numeric in CurrentMemoryContext
 */
Numeric
model_ltv(const Model *model, const char *segment)
{
	WeightEntry *e = weights_lookup(model->ltv, segment);
	Numeric		amount = e ? e->amount : model->no_ltv;

	return DatumGetNumeric(datumCopy(NumericGetDatum(amount), false, -1));
}

PG_FUNCTION_INFO_V1(scoring_model_valid);

/*
 * scoring.model_valid(intercept, weights, numeric_features, ltv): the
 * CHECK constraint of scoring.model, so that a hand edit that would break
 * scoring fails when it is made, saying why.
 */
Datum
scoring_model_valid(PG_FUNCTION_ARGS)
{
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext,
											  "scoring model check",
											  ALLOCSET_SMALL_SIZES);
	MemoryContext old = MemoryContextSwitchTo(tmp);
	int			i;

	for (i = 0; i < 4; i++)
		if (PG_ARGISNULL(i))
			invalid_model("intercept, weights, numeric_features and ltv must not be null.");
	model_build(0, PG_GETARG_FLOAT8(0), PG_GETARG_JSONB_P(1),
				PG_GETARG_JSONB_P(2), PG_GETARG_JSONB_P(3));
	MemoryContextSwitchTo(old);
	MemoryContextDelete(tmp);
	PG_RETURN_BOOL(true);
}
