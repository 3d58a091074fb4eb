-- test/bench/train_export.sql
--	Benchmark 3: the query whose result sklearn is given, copied out to CSV
--	by train.py.  The same leads and the same information scoring.train()
--	reads (its own query, src/train.c: lead, client, the client's history
--	before the lead from one window over the client's leads and wins),
--	with the free features taken out of the jsonb into columns, as a data
--	scientist exporting for sklearn would.
--
-- Kept as one statement: train.py runs it inside \copy (...) TO file.

WITH events AS (
	SELECT client_id, created_at AS at, 1 AS kind, lead_id
	  FROM scoring.lead
	 WHERE client_id IS NOT NULL AND created_at < '2025-01-01+00'
	UNION ALL
	SELECT client_id, greatest(closed_at, created_at),
		   CASE WHEN closed_at > created_at THEN 0 ELSE 2 END, NULL
	  FROM scoring.lead
	 WHERE client_id IS NOT NULL AND created_at < '2025-01-01+00'
	   AND status = 'won' AND closed_at IS NOT NULL
), history AS (
	SELECT lead_id, count(*) FILTER (WHERE kind = 1) OVER w AS leads,
		   count(*) FILTER (WHERE kind <> 1) OVER w AS wins
	  FROM events
	WINDOW w AS (PARTITION BY client_id ORDER BY at, kind
				 RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP)
)
SELECT l.shop, l.channel, l.category, l.brand, l.budget,
	   c.kind, c.industry, left(c.okved, 2) AS okved2, c.core_industry,
	   c.annual_turnover, coalesce(h.leads, 0) AS history_leads,
	   CASE WHEN h.leads > 0 THEN (h.wins + 1.0) / (h.leads + 2.0) END AS history_win_rate,
	   f.*,
	   (l.status = 'won')::int AS won
  FROM scoring.lead l
  LEFT JOIN scoring.client c ON c.client_id = l.client_id
  LEFT JOIN history h ON h.lead_id = l.lead_id
  CROSS JOIN LATERAL jsonb_to_record(l.features) AS f(
		utm_source text, region text, utm_campaign text, device text,
		form_type text, lang text, product_group text, payment_terms text,
		items numeric, page_views numeric, time_on_site numeric,
		days_since_visit numeric, quoted_price numeric, discount_pct numeric,
		delivery_km numeric, employees numeric,
		urgent boolean, has_attachment boolean, vat_payer boolean, newsletter boolean)
 WHERE l.status IN ('won', 'lost')
   AND l.created_at >= '2024-01-01+00' AND l.created_at < '2025-01-01+00'
