# Makefile for the scoring extension (PGXS)

EXTENSION = scoring
MODULE_big = scoring
EXTVERSION = 0.1.0

OBJS = \
	src/scoring.o \
	src/cache.o \
	src/client.o \
	src/client_cache.o \
	src/visible.o \
	src/history_cache.o \
	src/condition.o \
	src/features.o \
	src/bins.o \
	src/model.o \
	src/train.o \
	src/train_parallel.o \
	src/train_columns.o \
	src/train_store.o \
	src/lead_trigger.o \
	src/route.o \
	src/render.o \
	src/predict.o \
	src/fit.o \
	src/closings.o \
	src/totals.o \
	src/automation.o

DATA = sql/scoring--$(EXTVERSION).sql

# pg_regress: one file per feature, run against an installed server
REGRESS = condition scoring bad_input route render claims sequences views
REGRESS_OPTS = --load-extension=scoring
# isolation specs live in test/specs, their outputs in test/expected
ISOLATION = model_swap train_parallel route_race route_dispatch route_offline route_accept route_deadlock claims_race claims_release sequences_overlap totals_concurrency lead_client client_cache visible_leads history_cache
ISOLATION_OPTS = --inputdir=test --outputdir=test/output --load-extension=scoring

PG_CPPFLAGS = -I$(srcdir)/src
EXTRA_CLEAN = results regression.diffs regression.out test/output
SHLIB_LINK = -lm

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies unless the server was configured with
# --enable-depend (Debian's is not): rebuild every object when a header
# changes, or a changed struct leaves stale objects behind
$(OBJS): $(wildcard src/*.h)
