/*-------------------------------------------------------------------------
 *
 * fit.c
 *		L2-regularised logistic regression on weighted patterns, and the
 *		metrics that tell how good a fit is.
 *
 * train.c compresses the training leads into distinct feature patterns,
 * each with a count of leads and of wins.  The fit minimises
 *
 *		sum_p [ n_p log(1 + e^eta_p) - y_p eta_p ] + l2/2 |beta without intercept|^2
 *
 * with Newton's method while the Hessian is small enough to factor (up to
 * NEWTON_MAX_COLS columns: a handful of iterations whatever the scaling of
 * the features), and with L-BFGS (Nocedal & Wright, algorithm 7.4) beyond
 * that; both with a backtracking line search.  On many patterns a Newton
 * fit on an even sample first brings a cold start close to the optimum
 * (fit_warm_start), and near it a factored Hessian serves several steps
 * (fit_newton), the sample's own to begin with, so that the fits on all
 * of them take a Hessian or none instead of five.  The intercept is not
 * penalised, so at the optimum the predicted wins add up to the actual
 * wins of the data fitted: the model is calibrated in the large by
 * construction.
 *
 * What the fits and the metrics need of the patterns at a point, the
 * objective with its gradient, the Hessian and the logits, is computed in
 * two parts cut at Patterns.split: a helper (train_parallel.c's worker),
 * which holds the second part, computes on it while this backend computes
 * on the first, and without one both parts are computed here, one after
 * the other; the sums are then added, so that the model is the same to
 * the last bit either way.
 *
 * IDENTIFICATION
 *		src/fit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include "fit.h"

/* How many correction pairs L-BFGS keeps */
#define LBFGS_M 10

/* Newton's method factors a dense Hessian of at most this many columns */
#define NEWTON_MAX_COLS 1500

/*
 * Newton stops when the decrement per lead falls below NEWTON_TOLERANCE, or
 * after a full step taken from below NEWTON_LAST_STEP; L-BFGS when no
 * coordinate of the gradient per lead is above LBFGS_TOLERANCE.  A fit that
 * is only measured (FIT_TO_MEASURE) stops at the looser tolerances: its
 * metrics are stored to six digits, which they reach long before.
 */
#define NEWTON_TOLERANCE 1e-12
#define NEWTON_MEASURE_TOLERANCE 1e-9
#define NEWTON_LAST_STEP 1e-8
#define LBFGS_TOLERANCE 1e-7
#define LBFGS_MEASURE_TOLERANCE 3e-6

/* A step with an old Hessian must cut the decrement at least this much */
#define CHORD_RATE 10.0

/* Whether pattern p takes part when fitting or measuring fold */
static inline bool
in_fold(const Patterns *pt, int64 p, int fold)
{
	return fold < 0 || pt->fold[p] == fold;
}

/* The linear predictor of a pattern */
static inline double
pattern_logit(const Patterns *pt, int64 p, const double *beta)
{
	const PatternCell *pg_restrict cells = pt->cells + pt->start[p];
	int64		len = pt->start[p + 1] - pt->start[p],
				k;
	double		eta = beta[0];

	for (k = 0; k < len; k++)
		eta += beta[cells[k].col] * cells[k].val;
	return eta;
}

/* The logistic function without overflow */
static inline double
sigmoid(double x)
{
	if (x >= 0)
		return 1.0 / (1.0 + exp(-x));
	else
	{
		double		e = exp(x);

		return e / (1.0 + e);
	}
}

/*
 * log(1 + e^x) without overflow, and the logistic function of x into *sig
 * (what sigmoid() gives), from one exponential: the objective and the
 * metrics need both for every pattern.
 */
static inline double
softplus_sigmoid(double x, double *sig)
{
	double		e = exp(-fabs(x));

	*sig = x >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e);
	return (x > 0 ? x : 0.0) + log1p(e);
}

/*
 * The data terms of the objective over patterns from..to-1 of fold, and
 * their gradient: out[0] the sum, out[1 + j] the gradient's column j.
 */
static void
sum_objective(const Patterns *pt, int64 from, int64 to, int fold,
			  const double *beta, double *out)
{
	double	   *grad = out + 1;
	double		f = 0;
	int64		p,
				k,
				len;
	const PatternCell *pg_restrict cells;

	memset(out, 0, sizeof(double) * (1 + pt->ncols));
	for (p = from; p < to; p++)
	{
		double		eta,
					q,
					r;

		if (!in_fold(pt, p, fold))
			continue;
		eta = pattern_logit(pt, p, beta);
		f += pt->n[p] * softplus_sigmoid(eta, &q) - pt->y[p] * eta;
		r = pt->n[p] * q - pt->y[p];
		grad[0] += r;
		len = pt->start[p + 1] - pt->start[p];
		cells = pt->cells + pt->start[p];
		for (k = 0; k < len; k++)
			grad[cells[k].col] += r * cells[k].val;
		if ((p & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	out[0] = f;
}

/*
 * The data terms' Hessian over patterns from..to-1 of fold: the sum of
 * n p (1 - p) x x', its upper triangle and the intercept's row only.
 */
static void
sum_hessian(const Patterns *pt, int64 from, int64 to, int fold,
			const double *beta, double *h)
{
	int			n = pt->ncols;
	int64		p,
				k,
				m,
				len;
	const PatternCell *pg_restrict cells;

	memset(h, 0, sizeof(double) * n * n);
	for (p = from; p < to; p++)
	{
		double		q,
					w;

		if (!in_fold(pt, p, fold))
			continue;
		q = sigmoid(pattern_logit(pt, p, beta));
		w = pt->n[p] * q * (1 - q);
		h[0] += w;
		len = pt->start[p + 1] - pt->start[p];
		cells = pt->cells + pt->start[p];
		for (k = 0; k < len; k++)
		{
			double		wv = w * cells[k].val;
			double	   *pg_restrict row = &h[(int64) cells[k].col * n];

			h[cells[k].col] += wv;	/* intercept row */
			for (m = k; m < len; m++)
				row[cells[m].col] += wv * cells[m].val;
		}
		if ((p & 0xFFFF) == 0)
			CHECK_FOR_INTERRUPTS();
	}
}

/*
 * How many doubles a sum over npatterns patterns of ncols columns is (the
 * logits: one a pattern)
 */
Size
pattern_sum_size(int ncols, PatternSum what, int64 npatterns)
{
	switch (what)
	{
		case SUM_OBJECTIVE:
			return 1 + (Size) ncols;
		case SUM_HESSIAN:
			return (Size) ncols * ncols;
		case SUM_LOGITS:
			break;
	}
	return (Size) npatterns;
}

/*
 * A sum over patterns from..to-1 of fold into out, or their logits (those
 * of fold; 0 for the others): what a helper computes
 */
void
pattern_sum(const Patterns *pt, PatternSum what, int64 from, int64 to,
			int fold, const double *beta, double *out)
{
	int64		p;

	switch (what)
	{
		case SUM_OBJECTIVE:
			sum_objective(pt, from, to, fold, beta, out);
			break;
		case SUM_HESSIAN:
			sum_hessian(pt, from, to, fold, beta, out);
			break;
		case SUM_LOGITS:
			for (p = from; p < to; p++)
				out[p - from] = in_fold(pt, p, fold) ?
					pattern_logit(pt, p, beta) : 0;
			break;
	}
}

/*
 * Computes what over all patterns: over those before split here, over the
 * others by the helper at the same time, or here after them.  Their sums
 * are added into out; their logits follow each other there.
 */
static void
over_patterns(const Patterns *pt, PatternSum what, int fold,
			  const double *beta, double *out)
{
	Size		size = pattern_sum_size(pt->ncols, what, pt->npatterns - pt->split);
	double	   *rest = what == SUM_LOGITS ? out + pt->split :
		palloc_extended(sizeof(double) * size, MCXT_ALLOC_HUGE);
	Size		i;

	if (pt->helper != NULL)
		pt->helper->start(pt->helper->arg, what, fold, beta);
	pattern_sum(pt, what, 0, pt->split, fold, beta, out);
	if (pt->helper != NULL)
		pt->helper->finish(pt->helper->arg, rest, size);
	else
		pattern_sum(pt, what, pt->split, pt->npatterns, fold, beta, rest);
	if (what == SUM_LOGITS)
		return;
	for (i = 0; i < size; i++)
		out[i] += rest[i];
	pfree(rest);
}

/* The logit at beta of every pattern of fold into eta (0 for the others) */
void
pattern_logits(const Patterns *pt, int fold, const double *beta, double *eta)
{
	over_patterns(pt, SUM_LOGITS, fold, beta, eta);
}

/* The objective at beta, and its gradient into grad */
static double
objective(const Patterns *pt, int fold, double l2, const double *beta,
		  double *grad)
{
	double	   *sums = palloc(sizeof(double) * (1 + pt->ncols));
	double		f;
	int			j;

	over_patterns(pt, SUM_OBJECTIVE, fold, beta, sums);
	f = sums[0];
	memcpy(grad, sums + 1, sizeof(double) * pt->ncols);
	pfree(sums);
	for (j = 1; j < pt->ncols; j++)
	{
		f += 0.5 * l2 * beta[j] * beta[j];
		grad[j] += l2 * beta[j];
	}
	return f;
}

/*
 * Backtracking line search with the Armijo condition: from beta along d,
 * whose slope g'd is negative, the first of step, step/2, ... that lowers
 * the objective from f enough; its point, objective and gradient go to
 * xnew, *fnew and gnew.  Returns the step, or 0 when 40 halvings found
 * none (gnew then holds no gradient of interest).
 */
static double
line_search(const Patterns *pt, int fold, double l2, const double *beta,
			const double *d, double f, double slope, double step,
			double *xnew, double *fnew, double *gnew)
{
	int			n = pt->ncols,
				i,
				j;

	for (i = 0; i < 40; i++, step *= 0.5)
	{
		for (j = 0; j < n; j++)
			xnew[j] = beta[j] + step * d[j];
		*fnew = objective(pt, fold, l2, xnew, gnew);
		if (isfinite(*fnew) && *fnew <= f + 1e-4 * step * slope)
			return step;
	}
	return 0;
}

static double
dot(const double *a, const double *b, int n)
{
	double		s = 0;
	int			i;

	for (i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static double
max_abs(const double *a, int n)
{
	double		m = 0;
	int			i;

	for (i = 0; i < n; i++)
		m = Max(m, fabs(a[i]));
	return m;
}

/*
 * The L-BFGS direction: -H g by the two-loop recursion over the stored
 * pairs (s_i, y_i), newest last in the ring at positions (head - count ..
 * head - 1) mod LBFGS_M.
 */
static void
lbfgs_direction(int n, const double *g, double **s, double **y,
				double *rho, int head, int count, double *d)
{
	double		alpha[LBFGS_M];
	int			i,
				j;

	for (j = 0; j < n; j++)
		d[j] = -g[j];
	for (i = 0; i < count; i++)
	{
		int			k = (head - 1 - i + LBFGS_M) % LBFGS_M;

		alpha[k] = rho[k] * dot(s[k], d, n);
		for (j = 0; j < n; j++)
			d[j] -= alpha[k] * y[k][j];
	}
	if (count > 0)
	{
		int			k = (head - 1 + LBFGS_M) % LBFGS_M;
		double		gamma = dot(s[k], y[k], n) / dot(y[k], y[k], n);

		for (j = 0; j < n; j++)
			d[j] *= gamma;
	}
	for (i = count - 1; i >= 0; i--)
	{
		int			k = (head - 1 - i + LBFGS_M) % LBFGS_M;
		double		b = rho[k] * dot(y[k], d, n);

		for (j = 0; j < n; j++)
			d[j] += (alpha[k] - b) * s[k][j];
	}
}

/* The total weight (number of leads) of a fold */
static double
fold_weight(const Patterns *pt, int fold)
{
	double		weight = 0;
	int64		p;

	for (p = 0; p < pt->npatterns; p++)
		if (in_fold(pt, p, fold))
			weight += pt->n[p];
	return weight;
}

/*
 * Fits with L-BFGS: stops when the largest gradient component per lead
 * falls below LBFGS_TOLERANCE (or LBFGS_MEASURE_TOLERANCE), the objective
 * stops moving, or after max_iter iterations.
 */
static FitResult
fit_lbfgs(const Patterns *pt, int fold, double l2, int max_iter,
		  FitPrecision precision, double *beta)
{
	int			n = pt->ncols;
	double	   *g = palloc(sizeof(double) * n);
	double	   *gnew = palloc(sizeof(double) * n);
	double	   *xnew = palloc(sizeof(double) * n);
	double	   *d = palloc(sizeof(double) * n);
	double	   *s[LBFGS_M],
			   *y[LBFGS_M],
				rho[LBFGS_M];
	double		weight,
				f,
				gtol;
	int			head = 0,
				count = 0,
				i;
	FitResult	res = {0, 0, false, 0};

	for (i = 0; i < LBFGS_M; i++)
	{
		s[i] = palloc(sizeof(double) * n);
		y[i] = palloc(sizeof(double) * n);
	}
	weight = fold_weight(pt, fold);
	gtol = (precision == FIT_TO_KEEP ? LBFGS_TOLERANCE : LBFGS_MEASURE_TOLERANCE) *
		Max(weight, 1.0);

	f = objective(pt, fold, l2, beta, g);
	while (res.iterations < max_iter)
	{
		double		step,
					slope,
					fnew = f;
		int			j;

		if (max_abs(g, n) <= gtol)
		{
			res.converged = true;
			break;
		}
		res.iterations++;

		lbfgs_direction(n, g, s, y, rho, head, count, d);
		slope = dot(g, d, n);
		if (slope >= 0)
		{
			/* not a descent direction: restart from steepest descent */
			count = 0;
			for (j = 0; j < n; j++)
				d[j] = -g[j];
			slope = dot(g, d, n);
		}

		step = line_search(pt, fold, l2, beta, d, f, slope,
						   count == 0 ? Min(1.0, 1.0 / sqrt(-slope)) : 1.0,
						   xnew, &fnew, gnew);
		if (step == 0)
		{
			/* no progress along any step: as good as it gets */
			res.converged = true;
			break;
		}

		/* keep the new correction pair when it keeps H positive */
		for (j = 0; j < n; j++)
		{
			s[head][j] = xnew[j] - beta[j];
			y[head][j] = gnew[j] - g[j];
		}
		if (dot(s[head], y[head], n) > 1e-12)
		{
			rho[head] = 1.0 / dot(s[head], y[head], n);
			head = (head + 1) % LBFGS_M;
			count = Min(count + 1, LBFGS_M);
		}

		memcpy(beta, xnew, sizeof(double) * n);
		memcpy(g, gnew, sizeof(double) * n);
		if (fabs(f - fnew) <= 1e-12 * Max(fabs(fnew), 1.0))
		{
			f = fnew;
			res.converged = true;
			break;
		}
		f = fnew;
	}
	res.loss = f;
	return res;
}

/*
 * The Hessian of the objective at beta, dense and symmetric: the sum over
 * patterns of n p (1 - p) x x' plus l2 on the diagonal but the intercept's.
 */
static void
hessian(const Patterns *pt, int fold, double l2, const double *beta, double *h)
{
	int			n = pt->ncols;
	int			i,
				j;

	over_patterns(pt, SUM_HESSIAN, fold, beta, h);
	/* columns are sorted within a pattern: mirror the upper triangle */
	for (i = 0; i < n; i++)
		for (j = 0; j < i; j++)
			h[(int64) i * n + j] = h[(int64) j * n + i];
	for (i = 1; i < n; i++)
		h[(int64) i * n + i] += l2;
	h[0] += 1e-9;				/* keeps a saturated fit factorable */
}

/*
 * Factors h = L L' in place (L in the lower triangle, the upper one left
 * as it was); false when h is not positive definite.
 */
static bool
cholesky_factor(double *h, int n)
{
	int			i,
				j,
				k;

	for (j = 0; j < n; j++)
	{
		double		d = h[(int64) j * n + j];

		for (k = 0; k < j; k++)
			d -= h[(int64) j * n + k] * h[(int64) j * n + k];
		if (!(d > 0))
			return false;
		d = sqrt(d);
		h[(int64) j * n + j] = d;
		for (i = j + 1; i < n; i++)
		{
			double		s = h[(int64) i * n + j];

			for (k = 0; k < j; k++)
				s -= h[(int64) i * n + k] * h[(int64) j * n + k];
			h[(int64) i * n + j] = s / d;
		}
	}
	return true;
}

/* Solves L L' x = b in place of b, L from cholesky_factor() */
static void
cholesky_solve(const double *l, double *b, int n)
{
	int			i,
				k;

	for (i = 0; i < n; i++)
	{
		for (k = 0; k < i; k++)
			b[i] -= l[(int64) i * n + k] * b[k];
		b[i] /= l[(int64) i * n + i];
	}
	for (i = n - 1; i >= 0; i--)
	{
		for (k = i + 1; k < n; k++)
			b[i] -= l[(int64) k * n + i] * b[k];
		b[i] /= l[(int64) i * n + i];
	}
}

/* The Newton direction d = -(scale H)^-1 g, H's factor in h */
static void
newton_step(const double *h, const double *g, double scale, double *d, int n)
{
	int			j;

	for (j = 0; j < n; j++)
		d[j] = -g[j] / scale;
	cholesky_solve(h, d, n);
}

/*
 * Fits with Newton's method and a backtracking line search: stops when the
 * Newton decrement per lead falls below NEWTON_TOLERANCE (or, measured,
 * NEWTON_MEASURE_TOLERANCE), after a full step with a fresh Hessian from
 * below NEWTON_LAST_STEP, after a step with a kept one that is bound to
 * bring it there, or after max_iter iterations.  Returns false in
 * *ok when the Hessian could not be factored, for the caller to go on with
 * L-BFGS.
 *
 * Near the optimum the Hessian hardly changes, and a step with the last
 * one factored (the chord method) costs a gradient pass instead of a
 * Hessian, several times less on a million patterns.  So a factored Hessian
 * is kept for the steps after it while each cuts the decrement at least
 * CHORD_RATE-fold; a new one is computed at the start, when a step with
 * the old one would not or finds no lower point, and after a step the
 * line search shortened.  With a million leads, started from the warm
 * start's (fit_warm_start), the fits compute no Hessian of all patterns.
 *
 * With carry, a fit may start from the factor an earlier fit left there,
 * its Hessian scaled to this fit's weight of leads (the warm start's, of a
 * sample; the fit on the training fold's for the final fit on all leads:
 * the Hessians differ by the holdout's fifth), and leaves its own factor
 * there.  The first step with it is taken on trust; the next must show the
 * tenfold cut.
 */
static FitResult
fit_newton(const Patterns *pt, int fold, double l2, int max_iter,
		   FitPrecision precision, double *beta, bool *ok, FitCarry *carry)
{
	int			n = pt->ncols;
	double	   *g = palloc(sizeof(double) * n);
	double	   *d = palloc(sizeof(double) * n);
	double	   *xnew = palloc(sizeof(double) * n);
	double	   *h;
	double		weight = Max(fold_weight(pt, fold), 1.0);
	double		f = objective(pt, fold, l2, beta, g);
	int			j;
	double		tolerance = precision == FIT_TO_KEEP ?
		NEWTON_TOLERANCE : NEWTON_MEASURE_TOLERANCE;
	double		last_decrement = 0,
				factor_weight = weight;
	bool		have_factor = false;
	FitResult	res = {0, 0, false, 0};

	if (carry != NULL && carry->factor != NULL)
	{
		h = carry->factor;
		factor_weight = carry->weight;
		have_factor = true;
		last_decrement = INFINITY;
	}
	else
		h = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * n * n);

	*ok = true;
	while (res.iterations < max_iter)
	{
		double		decrement = 0,
					step,
					fnew = f;
		bool		fresh = !have_factor;

		if (have_factor)
		{
			newton_step(h, g, weight / factor_weight, d, n);
			decrement = -dot(g, d, n);
			/* the old Hessian no longer pays: a new one here */
			fresh = !(decrement * CHORD_RATE <= last_decrement);
		}
		if (fresh)
		{
			hessian(pt, fold, l2, beta, h);
			if (!cholesky_factor(h, n))
			{
				*ok = false;
				break;
			}
			factor_weight = weight;
			newton_step(h, g, 1.0, d, n);
			decrement = -dot(g, d, n);
		}
		have_factor = true;
		res.iterations++;
		res.hessians += fresh ? 1 : 0;
		if (decrement / weight < tolerance)
		{
			res.converged = true;
			break;
		}

		/*
		 * A step with a kept factor cuts the decrement about as much as the
		 * step before it did (the chord method converges linearly, here a
		 * hundredfold a step).  When that cut takes it below the tolerance,
		 * the full step is taken as it stands: the gradient pass of its line
		 * search would only confirm the point and the stop.
		 */
		if (!fresh && isfinite(last_decrement) &&
			decrement * (decrement / last_decrement) / weight < tolerance)
		{
			for (j = 0; j < n; j++)
				beta[j] += d[j];
			res.converged = true;
			break;
		}
		step = line_search(pt, fold, l2, beta, d, f, -decrement, 1.0,
						   xnew, &fnew, g);
		if (step == 0)
		{
			objective(pt, fold, l2, beta, g);
			if (!fresh)
			{
				/* a kept Hessian found nothing better: a new one here */
				have_factor = false;
				continue;
			}
			res.converged = true;
			break;
		}
		memcpy(beta, xnew, sizeof(double) * n);
		f = fnew;
		last_decrement = decrement;
		if (step < 1.0)
			have_factor = false;

		/*
		 * A full Newton step from this close squares the decrement
		 * (quadratic convergence): the next one would be far below the
		 * tolerance, so it is not worth a gradient pass to find that out.
		 */
		if (fresh && step == 1.0 && decrement / weight < NEWTON_LAST_STEP)
		{
			res.converged = true;
			break;
		}
	}
	if (carry != NULL)
	{
		carry->factor = *ok && have_factor ? h : NULL;
		carry->weight = factor_weight;
	}
	else
		pfree(h);
	res.loss = f;
	return res;
}

/*
 * The patterns of fold whose number, counted from first, is a multiple of
 * stride, as patterns of their own (all in fold 0).  When a helper holds
 * the cells of the patterns from split on, the sample has theirs only in
 * the helper's sample (PatternHelper.every), which is split off the same
 * way; without one, the sample of those is here, cut off at the same
 * place, so that the sums on it round the same either way.
 */
Patterns
patterns_every(const Patterns *pt, int fold, int64 stride, int64 first)
{
	Patterns	sub;
	int64		held = pt->helper != NULL ? pt->split : pt->npatterns,
				from = (stride - first % stride) % stride,
				p,
				m = 0,
				len = 0;

	memset(&sub, 0, sizeof(sub));
	for (p = from; p < pt->npatterns; p += stride)
		if (in_fold(pt, p, fold))
		{
			m++;
			if (p < pt->split)
				sub.split++;
			if (p < held)
				len += pt->start[p + 1] - pt->start[p];
		}
	sub.ncols = pt->ncols;
	sub.npatterns = m;
	sub.start = palloc(sizeof(int64) * (m + 1));
	sub.cells = palloc(sizeof(PatternCell) * Max(len, 1));
	sub.n = palloc(sizeof(double) * Max(m, 1));
	sub.y = palloc(sizeof(double) * Max(m, 1));
	sub.fold = palloc0(sizeof(char) * Max(m, 1));
	sub.start[0] = 0;
	m = 0;
	for (p = from; p < pt->npatterns; p += stride)
	{
		int64		plen = p < held ? pt->start[p + 1] - pt->start[p] : 0;

		if (!in_fold(pt, p, fold))
			continue;
		if (plen > 0)
			memcpy(&sub.cells[sub.start[m]], &pt->cells[pt->start[p]],
				   sizeof(PatternCell) * plen);
		sub.n[m] = pt->n[p];
		sub.y[m] = pt->y[p];
		sub.start[m + 1] = sub.start[m] + plen;
		m++;
	}
	if (pt->helper != NULL)
		sub.helper = pt->helper->every(pt->helper->arg, fold, stride);
	return sub;
}

/*
 * Moves beta from a cold start close to the optimum for little: a Newton
 * fit on an even sample of about sample patterns of fold, its penalty
 * scaled down with its weight, so that the fit on all patterns starts
 * close enough for a factored Hessian to serve several steps (fit_newton).
 * The sample's last one, scaled up to all patterns by the weights, is that
 * Hessian but for the sample's noise: it is left in carry for the fit to
 * start with, and the fit computes its own when it stops paying (a million
 * leads, default options: no Hessian of all patterns instead of one, for
 * five more gradient passes in the two fits, where a Hessian costs ten).
 * Does nothing when the patterns are fewer than four times sample.
 * Returns how many patterns it fitted.
 */
int64
fit_warm_start(const Patterns *pt, int fold, double l2, int max_iter,
			   int sample, double *beta, FitCarry *carry)
{
	int64		stride = sample > 0 ? pt->npatterns / sample : 0,
				m;
	Patterns	sub;
	bool		ok;
	double		share;

	if (stride < 4 || pt->ncols > NEWTON_MAX_COLS)
		return 0;
	sub = patterns_every(pt, fold, stride, 0);
	share = fold_weight(&sub, -1) / Max(fold_weight(pt, fold), 1.0);
	if (sub.npatterns > 0)
		fit_newton(&sub, -1, l2 * share, max_iter, FIT_TO_KEEP, beta, &ok,
				   carry);
	m = sub.npatterns;
	pfree(sub.start);
	pfree(sub.cells);
	pfree(sub.n);
	pfree(sub.y);
	pfree(sub.fold);
	return m;
}

/*
 * Fits beta (ncols coefficients, beta[0] the intercept; used as the
 * starting point) on the patterns of fold (-1: all), as closely as
 * precision says: Newton's method when the Hessian is small enough to
 * factor, L-BFGS otherwise.  carry, when given, hands a factored Hessian
 * from one Newton fit to the next.
 */
FitResult
fit_logistic(const Patterns *pt, int fold, double l2, int max_iter,
			 FitPrecision precision, double *beta, FitCarry *carry)
{
	FitResult	res;
	bool		ok = false;

	if (pt->ncols <= NEWTON_MAX_COLS)
	{
		res = fit_newton(pt, fold, l2, max_iter, precision, beta, &ok, carry);
		if (ok)
			return res;
	}
	return fit_lbfgs(pt, fold, l2, max_iter, precision, beta);
}

/* A pattern's predicted probability, for sorting by score */
typedef struct Scored
{
	double		p;
	double		n;
	double		y;
} Scored;

/* The bits of a non-negative double, which order like the numbers */
static inline uint64
scored_key(const Scored *s)
{
	uint64		k;

	memcpy(&k, &s->p, sizeof(k));
	return k;
}

/*
 * Stable radix sort passes of 16 bits over the bits of p from bit first
 * up: sorts sc by the bits from first on, those equal there in the order
 * they came
 */
static void
radix_passes(Scored *sc, int64 m, int first)
{
	Scored	   *from = sc,
			   *to = palloc_extended(sizeof(Scored) * Max(m, 1), MCXT_ALLOC_HUGE);
	int64	   *count = palloc(sizeof(int64) * 65536);
	int			shift;
	int64		i;

	for (shift = first; shift < 64; shift += 16)
	{
		int64		sum = 0;
		Scored	   *swap;

		memset(count, 0, sizeof(int64) * 65536);
		for (i = 0; i < m; i++)
			count[(scored_key(&from[i]) >> shift) & 0xFFFF]++;
		if (m > 0 && count[(scored_key(&from[0]) >> shift) & 0xFFFF] == m)
			continue;			/* one digit for all: nothing to move */
		for (i = 0; i < 65536; i++)
		{
			int64		c = count[i];

			count[i] = sum;
			sum += c;
		}
		for (i = 0; i < m; i++)
			to[count[(scored_key(&from[i]) >> shift) & 0xFFFF]++] = from[i];
		swap = from;
		from = to;
		to = swap;
	}
	if (from != sc)
	{
		memcpy(sc, from, sizeof(Scored) * m);
		to = from;
	}
	pfree(to);
	pfree(count);
}

/* Runs of patterns that share the upper half of p's bits, at most */
#define SHORT_RUN	16

/*
 * Sorts scored patterns by p, ascending, those with equal p in the order
 * they came: a radix sort on the bits of p (0 to 1, so non-negative),
 * linear in the patterns where qsort was a twentieth of a default train()
 * on a million leads.  Two passes sort by the upper half of the bits (the
 * exponent and 20 bits of the mantissa); the patterns that share it, a few
 * at a time, are then put in order by all the bits with an insertion sort,
 * which keeps equal ones in the order they came, as two more passes over
 * all the patterns would.  When some share it by the many (a model that
 * scores nearly every lead alike), those two passes are made instead, then
 * the first two again.
 */
static void
sort_scored(Scored *sc, int64 m)
{
	int64		i,
				j,
				run = 1;

	radix_passes(sc, m, 32);
	for (i = 1; i < m && run <= SHORT_RUN; i++)
		run = (scored_key(&sc[i]) >> 32) == (scored_key(&sc[i - 1]) >> 32) ?
			run + 1 : 1;
	if (run > SHORT_RUN)
	{
		radix_passes(sc, m, 0);
		return;
	}
	for (i = 1; i < m; i++)
	{
		Scored		s = sc[i];
		uint64		key = scored_key(&s);

		for (j = i; j > 0 && scored_key(&sc[j - 1]) > key; j--)
			sc[j] = sc[j - 1];
		sc[j] = s;
	}
}

/*
 * Appends the metrics of beta on fold as a JSON object: leads, wins, AUC
 * (ties count half), mean log-loss, the sum of p against the wins, and
 * calibration by decile of predicted probability.
 */
void
fold_metrics(const Patterns *pt, int fold, const double *beta, StringInfo out)
{
	Scored	   *sc = palloc(sizeof(Scored) * Max(pt->npatterns, 1));
	double	   *etas = palloc_extended(sizeof(double) * Max(pt->npatterns, 1),
									   MCXT_ALLOC_HUGE);
	int64		m = 0,
				p,
				i;
	double		rows = 0,
				wins = 0,
				sump = 0,
				loss = 0,
				auc = 0,
				neg_below = 0,
				cum = 0;
	int			bin;

	pattern_logits(pt, fold, beta, etas);
	for (p = 0; p < pt->npatterns; p++)
	{
		double		eta = etas[p];

		if (!in_fold(pt, p, fold))
			continue;
		loss += pt->n[p] * softplus_sigmoid(eta, &sc[m].p) - pt->y[p] * eta;
		sc[m].n = pt->n[p];
		sc[m].y = pt->y[p];
		rows += pt->n[p];
		wins += pt->y[p];
		sump += pt->n[p] * sc[m].p;
		m++;
	}
	pfree(etas);
	appendStringInfo(out, "{\"leads\": %.0f, \"wins\": %.0f", rows, wins);
	if (rows == 0)
	{
		appendStringInfoChar(out, '}');
		return;
	}
	appendStringInfo(out, ", \"log_loss\": %.6f, \"sum_p\": %.3f", loss / rows, sump);
	if (wins > 0)
		appendStringInfo(out, ", \"sum_p_over_wins\": %.4f", sump / wins);

	sort_scored(sc, m);

	/* AUC: each win beats the losses scored below it, ties count half */
	for (i = 0; i < m;)
	{
		int64		j = i;
		double		pos = 0,
					neg = 0;

		while (j < m && sc[j].p == sc[i].p)
		{
			pos += sc[j].y;
			neg += sc[j].n - sc[j].y;
			j++;
		}
		auc += pos * (neg_below + 0.5 * neg);
		neg_below += neg;
		i = j;
	}
	if (wins > 0 && wins < rows)
		appendStringInfo(out, ", \"auc\": %.6f", auc / (wins * (rows - wins)));

	/* calibration: ten bins of equal size by predicted probability */
	appendStringInfoString(out, ", \"calibration\": [");
	for (bin = 0, i = 0; bin < 10; bin++)
	{
		double		bn = 0,
					bp = 0,
					by = 0;

		while (i < m && (cum + sc[i].n / 2) < rows * (bin + 1) / 10.0)
		{
			bn += sc[i].n;
			bp += sc[i].n * sc[i].p;
			by += sc[i].y;
			cum += sc[i].n;
			i++;
		}
		appendStringInfo(out, "%s{\"decile\": %d, \"leads\": %.0f",
						 bin ? ", " : "", bin + 1, bn);
		if (bn > 0)
			appendStringInfo(out, ", \"mean_p\": %.4f, \"win_rate\": %.4f",
							 bp / bn, by / bn);
		appendStringInfoChar(out, '}');
	}
	appendStringInfoString(out, "]}");
	pfree(sc);
}
