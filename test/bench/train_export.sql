-- test/bench/train_export.sql
--	Benchmark 3: the query whose result sklearn is given, copied out to CSV
--	by train.py.  The same leads and the same information scoring.train()
--	reads (its own query, src/train.c: lead, client, the client's history
--	before the lead), with the free features taken out of the jsonb into
--	columns, as a data scientist exporting for sklearn would.
--
-- Kept as one statement: train.py runs it inside \copy (...) TO file.

SELECT l.shop, l.channel, l.category, l.brand, l.budget,
	   c.kind, c.industry, left(c.okved, 2) AS okved2, c.core_industry,
	   c.annual_turnover, coalesce(h.leads, 0) AS history_leads,
	   CASE WHEN h.leads > 0 THEN (h.wins + 1.0) / (h.leads + 2.0) END AS history_win_rate,
	   f.*,
	   (l.status = 'won')::int AS won
  FROM scoring.lead l
  LEFT JOIN scoring.client c ON c.client_id = l.client_id
  LEFT JOIN LATERAL (
		SELECT count(*) AS leads,
			   count(*) FILTER (WHERE e.status = 'won'
								AND e.closed_at <= l.created_at) AS wins
		  FROM scoring.lead e
		 WHERE e.client_id = l.client_id AND e.created_at < l.created_at) h
	   ON l.client_id IS NOT NULL
  CROSS JOIN LATERAL jsonb_to_record(l.features) AS f(
		utm_source text, region text, utm_campaign text, device text,
		form_type text, lang text, product_group text, payment_terms text,
		items numeric, page_views numeric, time_on_site numeric,
		days_since_visit numeric, quoted_price numeric, discount_pct numeric,
		delivery_km numeric, employees numeric,
		urgent boolean, has_attachment boolean, vat_payer boolean, newsletter boolean)
 WHERE l.status IN ('won', 'lost')
   AND l.created_at >= '2024-01-01+00' AND l.created_at < '2025-01-01+00'
