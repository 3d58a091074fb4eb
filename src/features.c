/*-------------------------------------------------------------------------
 *
 * features.c
 *		What is known about a lead at entry, as features for the model.
 *
 * Training and scoring both describe a lead through features_emit(), so the
 * two can never disagree about what a feature means.  Fixed fields (shop,
 * channel, the client's kind, ...) always emit a level, "(missing)" when
 * the value is absent.  Free features from the lead's jsonb emit only when
 * present: a string is a category, a boolean is the category "true" or
 * "false", a number is a numeric feature plus a "(present)" indicator;
 * nulls, arrays and objects carry nothing.
 *
 * IDENTIFICATION
 *		src/features.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"

#include "scoring.h"

#define FEATURES_PREFIX "features."

/*
 * The transform applied to every numeric feature before standardisation:
 * money, counts and turnovers are heavy-tailed, their logarithm is not.
 */
double
feature_transform(double x)
{
	return x >= 0 ? log1p(x) : -log1p(-x);
}

/*
 * numeric's on-disk format, as the top of PostgreSQL's numeric.c sets it
 * out (pg_upgrade keeps it, so it cannot change): a 16-bit header, in the
 * long form followed by a 16-bit weight, then base-10000 digits, the first
 * of them worth 10000^weight.
 */
#define NUMERIC_SIGN_MASK			0xC000
#define NUMERIC_NEG					0x4000
#define NUMERIC_SHORT				0x8000
#define NUMERIC_SPECIAL				0xC000
#define NUMERIC_SHORT_SIGN_MASK		0x2000
#define NUMERIC_SHORT_WEIGHT_SIGN	0x0040
#define NUMERIC_SHORT_WEIGHT_MASK	0x003F

/* The powers of ten a double holds exactly */
static const double exact_powers_of_ten[] = {
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

#define EXACT_POWERS_OF_TEN ((int) lengthof(exact_powers_of_ten) - 1)

/*
 * A numeric of at most four base-10000 digits as *m x 10^*e, read straight
 * from its digits (|m| < 10^16); false for anything else: NaN, infinities
 * and longer values.  What a lead carries (counts, roubles, shares,
 * margins) is of this kind.
 */
bool
small_numeric_decimal(Numeric num, int64 *m, int *e)
{
	const char *data = VARDATA_ANY(num);
	int			size = VARSIZE_ANY_EXHDR(num),
				weight,
				ndigits,
				i;
	uint16		header;
	bool		negative;
	int64		digits = 0;

	memcpy(&header, data, sizeof(header));
	if ((header & NUMERIC_SIGN_MASK) == NUMERIC_SPECIAL)
		return false;
	if (header & NUMERIC_SHORT)
	{
		negative = (header & NUMERIC_SHORT_SIGN_MASK) != 0;
		weight = (header & NUMERIC_SHORT_WEIGHT_MASK) |
			((header & NUMERIC_SHORT_WEIGHT_SIGN) ? ~NUMERIC_SHORT_WEIGHT_MASK : 0);
		data += sizeof(uint16);
		size -= sizeof(uint16);
	}
	else
	{
		int16		w;

		negative = (header & NUMERIC_SIGN_MASK) == NUMERIC_NEG;
		memcpy(&w, data + sizeof(uint16), sizeof(w));
		weight = w;
		data += 2 * sizeof(uint16);
		size -= 2 * sizeof(uint16);
	}
	ndigits = size / (int) sizeof(int16);
	if (ndigits > 4)
		return false;
	for (i = 0; i < ndigits; i++)
	{
		int16		digit;

		memcpy(&digit, data + i * sizeof(int16), sizeof(digit));
		digits = digits * 10000 + digit;
	}
	*m = negative ? -digits : digits;
	*e = ndigits == 0 ? 0 : 4 * (weight - ndigits + 1);
	return true;
}

/*
 * A small numeric (above) whose digits' integer M is below 2^53, scaled by
 * a power of ten p that a double holds exactly, into *result: M * p or
 * M / p is a single correctly rounded operation on exact operands, the
 * double nearest the numeric, what the text conversion (strtod) gives too,
 * bit for bit.  False for anything else, left to the general conversion.
 */
static bool
small_numeric_to_double(Numeric num, double *result)
{
	int64		m;
	int			e;
	double		d;

	if (!small_numeric_decimal(num, &m, &e) || Abs(m) > (INT64CONST(1) << 53))
		return false;
	if (e >= 0 && e <= EXACT_POWERS_OF_TEN)
		d = (double) Abs(m) * exact_powers_of_ten[e];
	else if (e < 0 && -e <= EXACT_POWERS_OF_TEN)
		d = (double) Abs(m) / exact_powers_of_ten[-e];
	else
		return false;
	*result = m < 0 ? -d : d;
	return true;
}

/*
 * Converts a numeric to a finite double; false for NaN, infinities and
 * values outside the range of a double.
 */
bool
numeric_to_finite_double(Numeric num, double *result)
{
	double		d;

	if (small_numeric_to_double(num, result))
		return true;
	if (numeric_is_nan(num))
		return false;
#if PG_VERSION_NUM >= 140000
	if (numeric_is_inf(num))
		return false;
#endif
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(num)));
	if (!isfinite(d))
		return false;
	*result = d;
	return true;
}

/* Emits a category whose level is a C string (NULL: missing) */
static inline void
emit_level(FeatureSink *sink, const char *field, const char *level)
{
	sink->category(sink, field, level, level != NULL ? strlen(level) : 0);
}

/* Emits a fixed numeric field: its value, or the "(missing)" level */
static void
emit_number(FeatureSink *sink, const char *field, bool present, double value)
{
	if (present)
		sink->number(sink, field, value);
	else
		emit_level(sink, field, LEVEL_MISSING);
}

/* Emits a fixed numeric field given as a numeric that may be NULL */
static void
emit_numeric(FeatureSink *sink, const char *field, Numeric num)
{
	double		value = 0;
	bool		present;

	present = num != NULL && numeric_to_finite_double(num, &value);
	emit_number(sink, field, present, value);
}

/*
 * Emits the fixed features of a lead: how it arrived, what was asked, who
 * asks and the client's history.  The caller adds the free features.
 */
void
features_emit_fixed(const LeadInput *lead, FeatureSink *sink)
{
	char		okved2[3];

	emit_level(sink, "shop", lead->shop);
	emit_level(sink, "channel", lead->channel);
	emit_level(sink, "category", lead->category);
	emit_level(sink, "brand", lead->brand);
	emit_numeric(sink, "budget", lead->budget);

	emit_level(sink, "client.kind", lead->client_kind);
	emit_level(sink, "client.industry", lead->client_industry);
	emit_level(sink, "client.core_industry",
			   lead->client_core < 0 ? NULL :
			   lead->client_core ? "true" : "false");

	/* the first two digits of the activity code: the class, often enough */
	if (lead->client_okved != NULL && strlen(lead->client_okved) >= 2)
	{
		memcpy(okved2, lead->client_okved, 2);
		okved2[2] = '\0';
		emit_level(sink, "client.okved2", okved2);
	}
	else
		emit_level(sink, "client.okved2", NULL);
	emit_numeric(sink, "client.annual_turnover", lead->client_turnover);

	/* repeat buyers: earlier leads, and a smoothed share of them won */
	sink->number(sink, "history.leads", (double) lead->prior_leads);
	emit_number(sink, "history.win_rate", lead->prior_leads > 0,
				(lead->prior_wins + 1.0) / (lead->prior_leads + 2.0));
}

/* Emits one free feature from its JSON value */
static void
emit_free_value(FeatureSink *sink, const char *field, JsonbValue *v)
{
	double		d;

	switch (v->type)
	{
		case jbvString:
			sink->category(sink, field, v->val.string.val, v->val.string.len);
			break;
		case jbvBool:
			emit_level(sink, field, v->val.boolean ? "true" : "false");
			break;
		case jbvNumeric:
			if (numeric_to_finite_double(v->val.numeric, &d))
			{
				sink->number(sink, field, d);
				emit_level(sink, field, LEVEL_PRESENT);
			}
			break;
		default:
			/* null, arrays and objects say nothing the model can use */
			break;
	}
}

/*
 * Writes "features.KEY" into buf.  '=' separates a field from its level in
 * a model's coefficients, so a key's '=' and '%' are written %3D and %25: a
 * key may hold anything and the model still reads back.
 */
void
free_field_name(StringInfo buf, const char *key, int keylen)
{
	int			i,
				from = 0;

	resetStringInfo(buf);
	appendBinaryStringInfo(buf, FEATURES_PREFIX, sizeof(FEATURES_PREFIX) - 1);
	for (i = 0; i < keylen; i++)
	{
		if (key[i] != '=' && key[i] != '%')
			continue;
		appendBinaryStringInfo(buf, key + from, i - from);
		appendStringInfoString(buf, key[i] == '=' ? "%3D" : "%25");
		from = i + 1;
	}
	appendBinaryStringInfo(buf, key + from, keylen - from);
}

/* The JSON key of a free field, undoing free_field_name() */
static char *
free_field_key(const char *field, int *keylen)
{
	const char *s = field + sizeof(FEATURES_PREFIX) - 1;
	char	   *key = palloc(strlen(s) + 1);
	int			n = 0;

	while (*s)
	{
		if (strncmp(s, "%3D", 3) == 0)
		{
			key[n++] = '=';
			s += 3;
		}
		else if (strncmp(s, "%25", 3) == 0)
		{
			key[n++] = '%';
			s += 3;
		}
		else
			key[n++] = *s++;
	}
	key[n] = '\0';
	*keylen = n;
	return key;
}

/*
 * Where entry i of container jc ends, given where it begins (off): the
 * entry stores either its length or, every JB_OFFSET_STRIDE entries, its
 * end (jsonb.h)
 */
static inline uint32
entry_end(const JsonbContainer *jc, uint32 i, uint32 off)
{
	JEntry		e = jc->children[i];

	return JBE_HAS_OFF(e) ? JBE_OFFLENFLD(e) : off + JBE_OFFLENFLD(e);
}

/*
 * Emits every free feature of a lead's jsonb: used by training, which must
 * see all keys to learn which ones matter.  Anything but an object carries
 * nothing.  The levels passed to the sink live in the jsonb, and the names
 * in the scratch buffer field until the next feature unless the sink names
 * them itself (free_field): a sink keeps copies.
 *
 * The object's entries are read where they lie, as jsonb.h lays them out:
 * its n keys, then its n values, each after the one before, so the walk
 * keeps one offset into the keys and one into the values instead of
 * building an iterator's copy of each.
 */
void
features_emit_all_free(Jsonb *features, FeatureSink *sink, StringInfo field)
{
	const JsonbContainer *jc;
	const char *data;
	uint32		n,
				i,
				key,
				value;

	if (features == NULL || !JB_ROOT_IS_OBJECT(features))
		return;

	jc = &features->root;
	n = JsonContainerSize(jc);
	data = (const char *) &jc->children[2 * n];
	key = 0;
	value = getJsonbOffset(jc, n);
	for (i = 0; i < n; i++)
	{
		JEntry		e = jc->children[n + i];
		uint32		key_end = entry_end(jc, i, key),
					value_end = entry_end(jc, n + i, value);
		const char *name;
		JsonbValue	v;

		if (sink->free_field != NULL)
			name = sink->free_field(sink, data + key, key_end - key);
		else
		{
			free_field_name(field, data + key, key_end - key);
			name = field->data;
		}

		v.type = jbvNull;		/* null, arrays and objects: nothing */
		if (JBE_ISSTRING(e))
		{
			v.type = jbvString;
			v.val.string.val = (char *) data + value;
			v.val.string.len = value_end - value;
		}
		else if (JBE_ISNUMERIC(e))
		{
			v.type = jbvNumeric;
			v.val.numeric = (Numeric) (data + INTALIGN(value));
		}
		else if (JBE_ISBOOL_TRUE(e) || JBE_ISBOOL_FALSE(e))
		{
			v.type = jbvBool;
			v.val.boolean = JBE_ISBOOL_TRUE(e);
		}
		emit_free_value(sink, name, &v);
		key = key_end;
		value = value_end;
	}
}

/*
 * Emits the named free features only ("features.KEY" names, as a model
 * knows them), looking each one up in the jsonb: scoring a lead with
 * thousands of keys costs what the model knows, not what the lead carries.
 */
void
features_emit_free(Jsonb *features, const FreeField *fields, int nfields,
				   FeatureSink *sink)
{
	int			i;

	if (features == NULL || !JB_ROOT_IS_OBJECT(features))
		return;

	for (i = 0; i < nfields; i++)
	{
		JsonbValue	v;

		if (getKeyJsonValueFromContainer(&features->root, fields[i].key,
										 fields[i].keylen, &v) != NULL)
			emit_free_value(sink, fields[i].name, &v);
	}
}

/* Names a free field and finds its JSON key, in CurrentMemoryContext */
void
free_field_init(FreeField *field, const char *name)
{
	field->name = name;
	field->key = free_field_key(name, &field->keylen);
}

/*
 * The client segment of a lead for the lifetime uplift: persons are one
 * segment, companies are split by industry and whether it is core for us.
 */
char *
client_segment(const LeadInput *lead)
{
	if (!lead->has_client || lead->client_kind == NULL)
		return pstrdup("unknown");
	if (strcmp(lead->client_kind, "company") != 0)
		return pstrdup(lead->client_kind);
	return psprintf("company/%s/%s",
					lead->client_industry ? lead->client_industry : LEVEL_MISSING,
					lead->client_core == 1 ? "core" :
					lead->client_core == 0 ? "non-core" : LEVEL_MISSING);
}
