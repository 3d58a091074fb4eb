-- test/bench/quality.sql
--	Benchmark 1 (quality): tables for the bank-marketing split that
--	quality.py writes.  It copies the training 70% into bench.train_in and
--	the test 30% into bench.test_lead, then runs quality_load.sql.

CREATE TABLE bench.train_in (
	row_id		int PRIMARY KEY,
	created_at	timestamptz,
	channel		text,
	features	jsonb,
	status		text
);

CREATE TABLE bench.test_lead (
	row_id		int PRIMARY KEY,
	created_at	timestamptz,
	channel		text,
	features	jsonb
);
