/*-------------------------------------------------------------------------
 *
 * condition.c
 *		The JSON condition language of refusal rules and routes.
 *
 * A condition is a JSON object whose keys must all hold: a key names a
 * lead column ("budget"), a client column ("client.kind") or a free feature
 * ("features.colour"), and its value is either a scalar to compare with
 * or an object of operators (eq, ne, in, nin, lt, lte, gt, gte, exists).
 * The key "any" holds an array of conditions of which one must hold.
 *
 * condition_compile() checks a condition once, when a rule is stored or a
 * cache loads, and turns it into a small tree that owns copies of its
 * strings and numbers.  condition_eval() walks that tree for each lead; it
 * gets the lead's values through a callback, allocates nothing of its own
 * and never fails on a value: a missing value or one of another type simply
 * does not compare equal.
 *
 * IDENTIFICATION
 *		src/condition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "scoring.h"

/* At most this many levels of "any" inside one another */
#define COND_MAX_DEPTH		32
/* At most this many keys in one object and conditions in one "any" */
#define COND_MAX_KEYS		1000
/* At most this many values in the list of "in" or "nin" */
#define COND_MAX_LIST		10000

#define FEATURES_PREFIX		"features."

typedef enum CondOpKind
{
	COND_OP_EQ,
	COND_OP_NE,
	COND_OP_IN,
	COND_OP_NIN,
	COND_OP_LT,
	COND_OP_LTE,
	COND_OP_GT,
	COND_OP_GTE,
	COND_OP_EXISTS
} CondOpKind;

/* Names of the operators, in the order of CondOpKind */
static const char *const operator_names[] = {
	"eq", "ne", "in", "nin", "lt", "lte", "gt", "gte", "exists"
};

#define COND_NOPS	lengthof(operator_names)

/* The lead and client columns a key may name, besides "features.KEY" */
static const char *const column_keys[] = {
	"shop", "channel", "category", "brand", "budget", "p_win",
	"expected_profit", "priority", "status",
	"client.kind", "client.industry", "client.core_industry",
	"client.annual_turnover", "client.okved"
};

#define KEYS_HINT \
	"Keys are shop, channel, category, brand, budget, p_win, " \
	"expected_profit, priority, status, client.kind, client.industry, " \
	"client.core_industry, client.annual_turnover, client.okved, " \
	"features.KEY and any."

#define OPERATORS_HINT \
	"Operators are eq, ne, in, nin, lt, lte, gt, gte and exists."

/* One operator with its operand */
typedef struct CondOp
{
	CondOpKind	kind;
	bool		exists;			/* operand of exists */
	int			nvalues;		/* 1, or the length of the list of in/nin */
	JsonbValue *values;			/* scalars: jbvString, jbvNumeric, jbvBool */
} CondOp;

/* The operators that must all hold for the value of one key */
typedef struct CondTest
{
	char	   *key;
	int			nops;
	CondOp	   *ops;
} CondTest;

/* An object: all tests hold, and one of the "any" conditions when given */
struct Condition
{
	int			ntests;
	CondTest   *tests;
	int			nany;			/* 0 when there is no "any" */
	Condition **any;
};

/* Where the compiler is, for error messages */
typedef struct CompileState
{
	StringInfoData path;		/* "any[1].budget.lt"; empty at the top */
} CompileState;

static Condition *compile_object(CompileState *state, JsonbContainer *jc,
								 int depth);
static void compile_error(CompileState *state, const char *hint,
						  const char *fmt,...)
			pg_attribute_printf(3, 4) pg_attribute_noreturn();

/* Report a malformed condition at the current path */
static void
compile_error(CompileState *state, const char *hint, const char *fmt,...)
{
	StringInfoData msg;

	initStringInfo(&msg);
	for (;;)
	{
		va_list		args;
		int			needed;

		va_start(args, fmt);
		needed = appendStringInfoVA(&msg, fmt, args);
		va_end(args);
		if (needed == 0)
			break;
		enlargeStringInfo(&msg, needed);
	}

	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid condition: %s", msg.data),
			 state->path.len > 0 ?
			 errdetail("The problem is at \"%s\".", state->path.data) :
			 errdetail("The problem is at the top level."),
			 hint ? errhint("%s", hint) : 0));
}

/* Append a key to the path; returns the length to restore afterwards */
static int
path_push_key(CompileState *state, const char *key, int len)
{
	int			saved = state->path.len;

	if (saved > 0)
		appendStringInfoChar(&state->path, '.');
	appendBinaryStringInfo(&state->path, key, len);
	return saved;
}

/* Append an array index to the path; returns the length to restore */
static int
path_push_index(CompileState *state, int index)
{
	int			saved = state->path.len;

	appendStringInfo(&state->path, "[%d]", index);
	return saved;
}

/* Cut the path back to what it was before a push */
static void
path_pop(CompileState *state, int saved)
{
	state->path.len = saved;
	state->path.data[saved] = '\0';
}

/* Describe the JSON type of a value for error messages */
static const char *
json_kind(const JsonbValue *val)
{
	switch (val->type)
	{
		case jbvNull:
			return "null";
		case jbvString:
			return "a string";
		case jbvNumeric:
			return "a number";
		case jbvBool:
			return "a boolean";
		case jbvBinary:
			if (JsonContainerIsObject(val->val.binary.data))
				return "an object";
			return "an array";
		case jbvArray:
			return "an array";
		case jbvObject:
			return "an object";
		default:
			return "an unsupported value";
	}
}

/* Is this a string, number or boolean? */
static bool
is_scalar(const JsonbValue *val)
{
	return val->type == jbvString || val->type == jbvNumeric ||
		val->type == jbvBool;
}

/* Copy a scalar so that it does not point into the Jsonb */
static void
copy_scalar(JsonbValue *dst, const JsonbValue *src)
{
	dst->type = src->type;
	switch (src->type)
	{
		case jbvString:
			{
				char	   *s = palloc(src->val.string.len + 1);

				memcpy(s, src->val.string.val, src->val.string.len);
				s[src->val.string.len] = '\0';
				dst->val.string.val = s;
				dst->val.string.len = src->val.string.len;
				break;
			}
		case jbvNumeric:
			{
				Size		size = VARSIZE_ANY(src->val.numeric);
				Numeric		num = palloc(size);

				memcpy(num, src->val.numeric, size);
				dst->val.numeric = num;
				break;
			}
		case jbvBool:
			dst->val.boolean = src->val.boolean;
			break;
		default:
			elog(ERROR, "unexpected jsonb value type %d", (int) src->type);
	}
}

/* Is this key a lead column, a client column or "features.KEY"? */
static bool
key_is_valid(const char *key, int len)
{
	int			prefix = strlen(FEATURES_PREFIX);

	for (int i = 0; i < lengthof(column_keys); i++)
	{
		if (strlen(column_keys[i]) == len &&
			memcmp(column_keys[i], key, len) == 0)
			return true;
	}
	return len > prefix && memcmp(key, FEATURES_PREFIX, prefix) == 0;
}

/* Find an operator by name; -1 when there is none */
static int
find_operator(const char *name, int len)
{
	for (int i = 0; i < COND_NOPS; i++)
	{
		if (strlen(operator_names[i]) == len &&
			memcmp(operator_names[i], name, len) == 0)
			return i;
	}
	return -1;
}

/* Compile the operand list of "in" or "nin" */
static void
compile_list(CompileState *state, CondOp *op, const JsonbValue *val)
{
	const char *name = operator_names[op->kind];
	JsonbContainer *jc;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	int			n;

	if (val->type != jbvBinary || !JsonContainerIsArray(val->val.binary.data))
		compile_error(state, NULL,
					  "operand of \"%s\" must be an array of strings, numbers or booleans, not %s",
					  name, json_kind(val));

	jc = val->val.binary.data;
	n = JsonContainerSize(jc);
	if (n == 0 && op->kind == COND_OP_IN)
		compile_error(state, "An empty list matches nothing.",
					  "operand of \"in\" must not be an empty array");
	if (n > COND_MAX_LIST)
		compile_error(state, NULL,
					  "operand of \"%s\" has too many values (%d, at most %d)",
					  name, n, COND_MAX_LIST);

	op->values = palloc(Max(n, 1) * sizeof(JsonbValue));
	op->nvalues = 0;
	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		if (tok != WJB_ELEM)
			continue;
		if (!is_scalar(&elem))
		{
			path_push_index(state, op->nvalues);
			compile_error(state, NULL,
						  "elements of \"%s\" must be strings, numbers or booleans, not %s",
						  name, json_kind(&elem));
		}
		Assert(op->nvalues < n);
		copy_scalar(&op->values[op->nvalues++], &elem);
	}
}

/* Compile one operator and its operand */
static void
compile_operator(CompileState *state, CondOp *op, const JsonbValue *val)
{
	const char *name = operator_names[op->kind];

	switch (op->kind)
	{
		case COND_OP_EQ:
		case COND_OP_NE:
			if (!is_scalar(val))
				compile_error(state,
							  val->type == jbvNull ?
							  "Use {\"exists\": false} to match a missing value." : NULL,
							  "operand of \"%s\" must be a string, number or boolean, not %s",
							  name, json_kind(val));
			op->nvalues = 1;
			op->values = palloc(sizeof(JsonbValue));
			copy_scalar(&op->values[0], val);
			break;
		case COND_OP_IN:
		case COND_OP_NIN:
			compile_list(state, op, val);
			break;
		case COND_OP_LT:
		case COND_OP_LTE:
		case COND_OP_GT:
		case COND_OP_GTE:
			if (val->type != jbvNumeric)
				compile_error(state, NULL,
							  "operand of \"%s\" must be a number, not %s",
							  name, json_kind(val));
			op->nvalues = 1;
			op->values = palloc(sizeof(JsonbValue));
			copy_scalar(&op->values[0], val);
			break;
		case COND_OP_EXISTS:
			if (val->type != jbvBool)
				compile_error(state, NULL,
							  "operand of \"exists\" must be true or false, not %s",
							  json_kind(val));
			op->exists = val->val.boolean;
			break;
	}
}

/* Compile an object of operators for one key */
static void
compile_operators(CompileState *state, CondTest *test, JsonbContainer *jc)
{
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	int			n = JsonContainerSize(jc);

	if (n == 0)
		compile_error(state, OPERATORS_HINT,
					  "no operator given for \"%s\"", test->key);

	/* keys are unique, so a valid object has at most one of each */
	test->ops = palloc0(Min(n, COND_NOPS) * sizeof(CondOp));
	test->nops = 0;
	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		int			kind;
		int			saved;

		if (tok != WJB_KEY)
			continue;
		saved = path_push_key(state, key.val.string.val, key.val.string.len);
		kind = find_operator(key.val.string.val, key.val.string.len);
		if (kind < 0)
			compile_error(state, OPERATORS_HINT, "unknown operator \"%.*s\"",
						  key.val.string.len, key.val.string.val);

		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);
		Assert(test->nops < COND_NOPS);
		test->ops[test->nops].kind = (CondOpKind) kind;
		compile_operator(state, &test->ops[test->nops], &val);
		test->nops++;
		path_pop(state, saved);
	}
}

/* Compile the value of one key: a scalar or an object of operators */
static void
compile_test(CompileState *state, CondTest *test, const JsonbValue *key,
			 const JsonbValue *val)
{
	test->key = pnstrdup(key->val.string.val, key->val.string.len);

	if (is_scalar(val))
	{
		test->nops = 1;
		test->ops = palloc0(sizeof(CondOp));
		test->ops[0].kind = COND_OP_EQ;
		test->ops[0].nvalues = 1;
		test->ops[0].values = palloc(sizeof(JsonbValue));
		copy_scalar(&test->ops[0].values[0], val);
	}
	else if (val->type == jbvBinary &&
			 JsonContainerIsObject(val->val.binary.data))
		compile_operators(state, test, val->val.binary.data);
	else if (val->type == jbvNull)
		compile_error(state,
					  "Use {\"exists\": false} to match a missing value.",
					  "null is not a valid value for \"%s\"", test->key);
	else
		compile_error(state,
					  "Use {\"in\": [...]} to match one of several values.",
					  "%s is not a valid value for \"%s\"",
					  json_kind(val), test->key);
}

/* Compile the array of conditions of an "any" key */
static void
compile_any(CompileState *state, Condition *cond, const JsonbValue *val,
			int depth)
{
	JsonbContainer *jc;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	elem;
	int			n;

	if (val->type != jbvBinary || !JsonContainerIsArray(val->val.binary.data))
		compile_error(state, NULL,
					  "\"any\" must be an array of conditions, not %s",
					  json_kind(val));

	jc = val->val.binary.data;
	n = JsonContainerSize(jc);
	if (n == 0)
		compile_error(state, "An empty \"any\" would match nothing.",
					  "\"any\" must not be an empty array");
	if (n > COND_MAX_KEYS)
		compile_error(state, NULL,
					  "\"any\" has too many conditions (%d, at most %d)",
					  n, COND_MAX_KEYS);
	if (depth >= COND_MAX_DEPTH)
		compile_error(state, NULL,
					  "\"any\" is nested too deeply (at most %d levels)",
					  COND_MAX_DEPTH);

	cond->any = palloc(n * sizeof(Condition *));
	cond->nany = 0;
	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &elem, true)) != WJB_DONE)
	{
		int			saved;

		if (tok != WJB_ELEM)
			continue;
		saved = path_push_index(state, cond->nany);
		if (elem.type != jbvBinary ||
			!JsonContainerIsObject(elem.val.binary.data))
			compile_error(state, NULL,
						  "each element of \"any\" must be an object, not %s",
						  json_kind(&elem));
		Assert(cond->nany < n);
		cond->any[cond->nany++] = compile_object(state, elem.val.binary.data,
												 depth + 1);
		path_pop(state, saved);
	}
}

/* Compile an object whose keys must all hold */
static Condition *
compile_object(CompileState *state, JsonbContainer *jc, int depth)
{
	Condition  *cond;
	JsonbIterator *it;
	JsonbIteratorToken tok;
	JsonbValue	key;
	JsonbValue	val;
	int			n = JsonContainerSize(jc);

	check_stack_depth();

	if (n > COND_MAX_KEYS)
		compile_error(state, NULL,
					  "too many keys in one object (%d, at most %d)",
					  n, COND_MAX_KEYS);

	cond = palloc0(sizeof(Condition));
	cond->tests = palloc(Max(n, 1) * sizeof(CondTest));
	it = JsonbIteratorInit(jc);
	while ((tok = JsonbIteratorNext(&it, &key, true)) != WJB_DONE)
	{
		int			saved;

		if (tok != WJB_KEY)
			continue;
		tok = JsonbIteratorNext(&it, &val, true);
		Assert(tok == WJB_VALUE);

		saved = path_push_key(state, key.val.string.val, key.val.string.len);
		if (key.val.string.len == 3 &&
			memcmp(key.val.string.val, "any", 3) == 0)
			compile_any(state, cond, &val, depth);
		else if (key_is_valid(key.val.string.val, key.val.string.len))
		{
			Assert(cond->ntests < n);
			compile_test(state, &cond->tests[cond->ntests++], &key, &val);
		}
		else if (key.val.string.len == strlen(FEATURES_PREFIX) &&
				 memcmp(key.val.string.val, FEATURES_PREFIX,
						key.val.string.len) == 0)
			compile_error(state, KEYS_HINT,
						  "key \"%s\" names no feature", FEATURES_PREFIX);
		else
			compile_error(state, KEYS_HINT, "unknown key \"%.*s\"",
						  key.val.string.len, key.val.string.val);
		path_pop(state, saved);
	}
	return cond;
}

/*
 * Check a condition and compile it into a tree allocated in
 * CurrentMemoryContext.  The tree holds its own copies of strings and
 * numbers, so the Jsonb (which must be detoasted) may be freed afterwards.
 * A malformed condition raises an error that says what is wrong and where.
 */
Condition *
condition_compile(Jsonb *cond)
{
	CompileState state;
	Condition  *result;

	initStringInfo(&state.path);

	if (!JB_ROOT_IS_OBJECT(cond))
	{
		JsonbValue	val;

		if (JB_ROOT_IS_SCALAR(cond) && JsonbExtractScalar(&cond->root, &val))
			compile_error(&state, NULL,
						  "a condition must be a JSON object, not %s",
						  json_kind(&val));
		compile_error(&state, NULL,
					  "a condition must be a JSON object, not an array");
	}

	result = compile_object(&state, &cond->root, 0);
	pfree(state.path.data);
	return result;
}

/* Do two scalars compare equal?  Values of different types never do. */
static bool
scalar_equal(const JsonbValue *a, const JsonbValue *b)
{
	if (a->type != b->type)
		return false;
	switch (a->type)
	{
		case jbvString:
			return a->val.string.len == b->val.string.len &&
				memcmp(a->val.string.val, b->val.string.val,
					   a->val.string.len) == 0;
		case jbvNumeric:
			return DatumGetInt32(DirectFunctionCall2(numeric_cmp,
													 NumericGetDatum(a->val.numeric),
													 NumericGetDatum(b->val.numeric))) == 0;
		case jbvBool:
			return a->val.boolean == b->val.boolean;
		default:
			return false;
	}
}

/* Is the value equal to one of the operands of in/nin? */
static bool
scalar_in_list(const JsonbValue *val, const CondOp *op)
{
	for (int i = 0; i < op->nvalues; i++)
	{
		if (scalar_equal(val, &op->values[i]))
			return true;
	}
	return false;
}

/* Does one operator hold?  val is NULL when the value is missing. */
static bool
operator_holds(const CondOp *op, const JsonbValue *val)
{
	int			cmp;

	switch (op->kind)
	{
		case COND_OP_EXISTS:
			return (val != NULL) == op->exists;
		case COND_OP_EQ:
			return val != NULL && scalar_equal(val, &op->values[0]);
		case COND_OP_NE:
			return val == NULL || !scalar_equal(val, &op->values[0]);
		case COND_OP_IN:
			return val != NULL && scalar_in_list(val, op);
		case COND_OP_NIN:
			return val == NULL || !scalar_in_list(val, op);
		case COND_OP_LT:
		case COND_OP_LTE:
		case COND_OP_GT:
		case COND_OP_GTE:
			/* only numbers are ordered; NaN is neither below nor above */
			if (val == NULL || val->type != jbvNumeric ||
				numeric_is_nan(val->val.numeric))
				return false;
			cmp = DatumGetInt32(DirectFunctionCall2(numeric_cmp,
													NumericGetDatum(val->val.numeric),
													NumericGetDatum(op->values[0].val.numeric)));
			if (op->kind == COND_OP_LT)
				return cmp < 0;
			if (op->kind == COND_OP_LTE)
				return cmp <= 0;
			if (op->kind == COND_OP_GT)
				return cmp > 0;
			return cmp >= 0;
	}
	return false;
}

/* Does a compiled object hold for the caller's row? */
static bool
eval_object(const Condition *cond, ConditionLookup lookup, void *ctx)
{
	check_stack_depth();

	for (int i = 0; i < cond->ntests; i++)
	{
		const CondTest *test = &cond->tests[i];
		JsonbValue	val;
		bool		found;

		found = lookup(ctx, test->key, &val);
		/* anything but a usable scalar counts as missing */
		if (found && (!is_scalar(&val) ||
					  (val.type == jbvNumeric && val.val.numeric == NULL) ||
					  (val.type == jbvString && val.val.string.val == NULL)))
			found = false;

		for (int j = 0; j < test->nops; j++)
		{
			if (!operator_holds(&test->ops[j], found ? &val : NULL))
				return false;
		}
	}

	if (cond->nany == 0)
		return true;
	for (int i = 0; i < cond->nany; i++)
	{
		if (eval_object(cond->any[i], lookup, ctx))
			return true;
	}
	return false;
}

/*
 * Does a compiled condition hold for the row that lookup reads from?
 * A NULL condition holds for everything, as {} does.
 */
bool
condition_eval(const Condition *cond, ConditionLookup lookup, void *ctx)
{
	if (cond == NULL)
		return true;
	return eval_object(cond, lookup, ctx);
}

/* ----------------------------------------------------------------
 * SQL-callable functions
 * ----------------------------------------------------------------
 */

/* The condition last compiled by one call site of condition_matches */
typedef struct MatchesCache
{
	MemoryContext mcxt;			/* holds cond and compiled */
	Jsonb	   *cond;
	Condition  *compiled;
} MatchesCache;

/* Find the scalar under a key of a JSON object; false when missing */
static bool
jsonb_object_scalar(JsonbContainer *jc, const char *key, int len,
					JsonbValue *out)
{
	if (!JsonContainerIsObject(jc) ||
		getKeyJsonValueFromContainer(jc, key, len, out) == NULL)
		return false;
	return is_scalar(out);
}

/* Find the object under a key of a JSON object; NULL when missing */
static JsonbContainer *
jsonb_object_object(JsonbContainer *jc, const char *key)
{
	JsonbValue	val;

	if (!JsonContainerIsObject(jc) ||
		getKeyJsonValueFromContainer(jc, key, strlen(key), &val) == NULL ||
		val.type != jbvBinary ||
		!JsonContainerIsObject(val.val.binary.data))
		return NULL;
	return val.val.binary.data;
}

/*
 * Look a key up in a JSON object shaped like a lead: lead columns at the
 * top, client columns under "client", free features under "features".
 */
static bool
subject_lookup(void *ctx, const char *key, JsonbValue *out)
{
	JsonbContainer *jc = &((Jsonb *) ctx)->root;
	const char *dot = strchr(key, '.');

	if (dot != NULL)
	{
		/* "client.kind" or "features.a.b": the rest may contain dots */
		char		outer[16];
		int			len = dot - key;

		if (len >= sizeof(outer))
			return false;
		memcpy(outer, key, len);
		outer[len] = '\0';
		jc = jsonb_object_object(jc, outer);
		if (jc == NULL)
			return false;
		key = dot + 1;
	}
	return jsonb_object_scalar(jc, key, strlen(key), out);
}

/*
 * scoring.condition_valid(condition jsonb) → bool
 *
 * True for a well-formed condition; raises an error saying what is wrong
 * and where otherwise.  Used by the CHECK constraint of refusal_rule.
 */
PG_FUNCTION_INFO_V1(scoring_condition_valid);
Datum
scoring_condition_valid(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);

	(void) condition_compile(cond);
	PG_RETURN_BOOL(true);
}

/*
 * scoring.condition_matches(condition jsonb, subject jsonb) → bool
 *
 * Does the condition hold for a lead given as one JSON object?  JSON null,
 * objects and arrays count as missing values.  The compiled condition is
 * kept for the next call, which usually passes the same one.
 */
PG_FUNCTION_INFO_V1(scoring_condition_matches);
Datum
scoring_condition_matches(PG_FUNCTION_ARGS)
{
	Jsonb	   *cond = PG_GETARG_JSONB_P(0);
	Jsonb	   *subject = PG_GETARG_JSONB_P(1);
	MatchesCache *cache = (MatchesCache *) fcinfo->flinfo->fn_extra;

	if (cache == NULL)
	{
		cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
									   sizeof(MatchesCache));
		cache->mcxt = AllocSetContextCreate(fcinfo->flinfo->fn_mcxt,
											"scoring condition_matches",
											ALLOCSET_SMALL_SIZES);
		fcinfo->flinfo->fn_extra = cache;
	}

	if (cache->compiled == NULL ||
		VARSIZE(cache->cond) != VARSIZE(cond) ||
		memcmp(cache->cond, cond, VARSIZE(cond)) != 0)
	{
		MemoryContext oldcxt;

		cache->compiled = NULL;
		cache->cond = NULL;
		MemoryContextReset(cache->mcxt);

		oldcxt = MemoryContextSwitchTo(cache->mcxt);
		cache->compiled = condition_compile(cond);
		cache->cond = palloc(VARSIZE(cond));
		memcpy(cache->cond, cond, VARSIZE(cond));
		MemoryContextSwitchTo(oldcxt);
	}

	if (!JB_ROOT_IS_OBJECT(subject))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject of a condition must be a JSON object"),
				 errdetail("Give a lead as an object with \"client\" and \"features\" objects inside.")));

	PG_RETURN_BOOL(condition_eval(cache->compiled, subject_lookup, subject));
}
