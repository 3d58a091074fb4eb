/*-------------------------------------------------------------------------
 *
 * fit.h
 *		Weighted feature patterns and the logistic regression fit on them.
 *
 * IDENTIFICATION
 *		src/fit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef SCORING_FIT_H
#define SCORING_FIT_H

#include "lib/stringinfo.h"

/* One (column, value) pair of a pattern */
typedef struct PatternCell
{
	int32		col;
	float4		val;
} PatternCell;

/*
 * Distinct feature patterns of the training leads, in compressed sparse
 * rows: pattern p has the cells start[p] .. start[p+1]-1, sorted by
 * column, n[p] leads of which y[p] were won, and belongs to fold[p] (0
 * training, 1 holdout).  Column 0 is the intercept and is never stored.
 * With a helper, the cells of the patterns from split on are the helper's.
 */
typedef struct Patterns
{
	int			ncols;
	int64		npatterns;
	int64	   *start;
	PatternCell *cells;
	double	   *n;
	double	   *y;
	char	   *fold;
	int64		split;			/* sums run over [0, split) and the rest apart */
	struct PatternHelper *helper;	/* holds the rest and sums it, or NULL */
} Patterns;

/* What a helper computes over its patterns */
typedef enum PatternSum
{
	SUM_OBJECTIVE,				/* the data terms and their gradient: 1 + ncols */
	SUM_HESSIAN,				/* the data terms' Hessian: ncols x ncols */
	SUM_LOGITS					/* no sum: each pattern's logit (of fold) */
} PatternSum;

/*
 * Someone who holds the patterns from split on (train_parallel.c: the
 * parallel worker, which encoded them) and computes on them at a point
 * while this backend computes on the others; the backend has their n, y
 * and fold, not their cells.  Without one the backend holds every cell
 * and computes on both parts itself, the same way, so that the results
 * round the same with a helper or without.
 */
typedef struct PatternHelper
{
	void		(*start) (void *arg, PatternSum what, int fold, const double *beta);
	void		(*finish) (void *arg, double *out, Size size);
	/* the helper of its every stride-th patterns of fold (patterns_every) */
	struct PatternHelper *(*every) (void *arg, int fold, int64 stride);
	void	   *arg;
} PatternHelper;

typedef struct FitResult
{
	int			iterations;
	int			hessians;		/* computed; 0 with L-BFGS or a carried one */
	bool		converged;
	double		loss;
} FitResult;

/*
 * A factored Hessian one Newton fit leaves to the next on nearly the same
 * leads (the holdout fit to the final one), and the weight of the leads it
 * was computed on; factor is NULL when there is none.
 */
typedef struct FitCarry
{
	double	   *factor;
	double		weight;
} FitCarry;

/* How closely a fit approaches the optimum */
typedef enum FitPrecision
{
	FIT_TO_KEEP,				/* the model stored */
	FIT_TO_MEASURE				/* a fit only measured on held-out leads */
} FitPrecision;

extern FitResult fit_logistic(const Patterns *pt, int fold, double l2,
							  int max_iter, FitPrecision precision,
							  double *beta, FitCarry *carry);
extern int64 fit_warm_start(const Patterns *pt, int fold, double l2,
							int max_iter, int sample, double *beta,
							FitCarry *carry);
extern Patterns patterns_every(const Patterns *pt, int fold, int64 stride,
							   int64 first);
extern void pattern_logits(const Patterns *pt, int fold, const double *beta,
						   double *eta);
extern Size pattern_sum_size(int ncols, PatternSum what, int64 npatterns);
extern void pattern_sum(const Patterns *pt, PatternSum what, int64 from,
						int64 to, int fold, const double *beta, double *out);
extern void fold_metrics(const Patterns *pt, int fold, const double *beta,
						 StringInfo out);

#endif							/* SCORING_FIT_H */
