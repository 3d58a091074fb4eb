/*-------------------------------------------------------------------------
 *
 * bins.c
 *		Ranges of a numeric feature: where training cuts them, which range
 *		a value falls in, and the name of a range in a model.
 *
 * Besides its standardised value, a number the model keeps falls into one
 * of a few ranges cut near quantiles of its training values, and each range
 * has a coefficient of its own: a straight line alone cannot say that the
 * youngest and the oldest clients buy more often than those in between.
 *
 * Cuts are round numbers (age cut at 31 and 36, not at 30.97 and 35.98),
 * stored in the model as decimals and shown in the names of the ranges:
 * "features.age=[31, 36)".  Training holds a value as feature_transform()
 * of it in single precision (train.c), so a value is compared with a cut
 * in that same form, in training and in scoring alike: both put every value
 * on the same side of every cut.
 *
 * IDENTIFICATION
 *		src/bins.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/numeric.h"

#include "bins.h"
#include "scoring.h"

/* A cut as it is compared: transformed, in single precision */
float4
bin_bound(double cut)
{
	return (float4) feature_transform(cut);
}

/* The range a value falls in */
int
bin_of(const float4 *bounds, int ncuts, double value)
{
	return bin_of_stored(bounds, ncuts, (float4) feature_transform(value));
}

/*
 * A cut as a decimal the way a numeric prints it (no exponent): what the
 * model stores and what the names of the ranges show.
 */
char *
bin_cut_text(double cut)
{
	Datum		num = DirectFunctionCall1(float8_numeric, Float8GetDatum(cut));

	return DatumGetCString(DirectFunctionCall1(numeric_out, num));
}

/*
 * The name of range b of ncuts + 1, given the cuts as text:
 * "(-inf, 31)", "[31, 36)", "[60, +inf)".
 */
char *
bin_label(char *const *cut_texts, int ncuts, int b)
{
	if (b == 0)
		return psprintf("(-inf, %s)", cut_texts[0]);
	if (b == ncuts)
		return psprintf("[%s, +inf)", cut_texts[ncuts - 1]);
	return psprintf("[%s, %s)", cut_texts[b - 1], cut_texts[b]);
}

/* The value a stored (transformed) value stands for */
static double
untransform(double s)
{
	return s >= 0 ? expm1(s) : -expm1(-s);
}

/*
 * The roundest number that separates two neighbouring stored values lo <
 * hi: the multiple of the largest power of ten whose bound is above lo and
 * at most hi.  Returns false when none does (lo and hi are neighbours in
 * single precision and no decimal falls between them).
 */
static bool
round_cut(float4 lo, float4 hi, double *cut)
{
	double		a = untransform(lo),
				b = untransform(hi);
	double		unit;
	int			i;

	/* near DBL_MAX a stored value may stand for more than a double holds */
	if (!isfinite(a) || !isfinite(b))
		return false;
	unit = pow(10.0, Min(floor(log10(Max(fabs(a), fabs(b)))) + 1, DBL_MAX_10_EXP));
	for (i = 0; i < DBL_DIG + 2; i++, unit /= 10)
	{
		double		c = (floor(a / unit) + 1) * unit;

		if (!isfinite(c))
			continue;

		/* as the model will store it, so that scoring compares the same */
		c = strtod(bin_cut_text(c), NULL);
		/* a came back from lo a little low: the next multiple */
		if (bin_bound(c) <= lo && isfinite(c + unit))
			c = strtod(bin_cut_text(c + unit), NULL);
		if (bin_bound(c) > lo && bin_bound(c) <= hi)
		{
			*cut = c;
			return true;
		}
	}
	return false;
}

static int
float4_cmp(const void *a, const void *b)
{
	float4		x = *(const float4 *) a;
	float4		y = *(const float4 *) b;

	return (x > y) - (x < y);
}

/*
 * Chooses at most nbins - 1 cuts from a sample of a feature's stored
 * values (sorted in place): for each quantile j / nbins, the roundest
 * number above the largest value below the quantile and at most the
 * quantile, so that a value that fills a quantile on its own (a count of
 * 1, a rate of 0) starts a range of its own.  Returns the number of cuts
 * written to cuts, increasing.
 */
int
bins_choose(float4 *sample, int n, int nbins, double *cuts)
{
	int			ncuts = 0;
	int			j;

	if (n < 2 || nbins < 2)
		return 0;
	qsort(sample, n, sizeof(float4), float4_cmp);
	for (j = 1; j < nbins; j++)
	{
		int			at = (int) ((int64) j * n / nbins);
		float4		q = sample[at];
		int			below = at;
		double		cut;

		/* the largest value below q */
		while (below > 0 && sample[below - 1] >= q)
			below--;
		if (below == 0)
			continue;
		if (!round_cut(sample[below - 1], q, &cut))
			continue;
		if (ncuts > 0 && bin_bound(cut) <= bin_bound(cuts[ncuts - 1]))
			continue;
		cuts[ncuts++] = cut;
	}
	return ncuts;
}
