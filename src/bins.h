/*-------------------------------------------------------------------------
 *
 * bins.h
 *		Ranges of a numeric feature (bins.c).
 *
 * IDENTIFICATION
 *		src/bins.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCORING_BINS_H
#define SCORING_BINS_H

/* At most this many ranges per number: option "bins" of train() */
#define BINS_MAX		32

/*
 * The range of a value as training holds it: how many of the ncuts cuts,
 * in ascending order, lie at or below it (none for a NaN).  Counted
 * rather than searched for: at most BINS_MAX - 1 cuts, and a count has no
 * branch to mispredict.
 */
static inline int
bin_of_stored(const float4 *bounds, int ncuts, float4 v)
{
	int			b = 0,
				i;

	for (i = 0; i < ncuts; i++)
		b += bounds[i] <= v;
	return b;
}

extern float4 bin_bound(double cut);
extern int	bin_of(const float4 *bounds, int ncuts, double value);
extern char *bin_cut_text(double cut);
extern char *bin_label(char *const *cut_texts, int ncuts, int b);
extern int	bins_choose(float4 *sample, int n, int nbins, double *cuts);

#endif							/* SCORING_BINS_H */
