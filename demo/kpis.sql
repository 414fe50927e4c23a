-- demo/kpis.sql: the database of the live KPI demo (demo/www/kpis.html).
--
-- public.daily_kpis holds one row per business and day (3 businesses x the last 7 days
-- seeded), enabled for postgres_changes with tidings.enable_changes(). public.demo_tick()
-- plays the role of the KPI job: each call bumps visits and leads of 1 to 3 random rows of
-- the last 7 days, recomputes their conversion, and now and then opens a new day (3 rows).
-- scripts/demo-pg.sh calls it every 300 ms. Every 20th tick or so it also touches
-- public.business_partners, whose trigger is the users' cache_invalidation trigger from
-- USERS.md (a plain pg_notify that tidings forwards with --notify_channel), and it
-- broadcasts a "kpis_refreshed" event with tidings.send() to the public topic 'kpis' (what
-- a REFRESH MATERIALIZED VIEW job would do, since a refresh fires no row trigger).
--
-- Needs schema tidings (`tidings sql install --pg ...` first). Safe to load twice.

SET client_min_messages = warning;

CREATE TABLE IF NOT EXISTS public.daily_kpis (
    business_id int           NOT NULL,
    day         date          NOT NULL,
    visits      int           NOT NULL DEFAULT 0,
    leads       int           NOT NULL DEFAULT 0,
    conversion  numeric(5, 2) NOT NULL DEFAULT 0,
    updated_at  timestamptz   NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, day)
);

-- Seed: 3 businesses x the last 7 days, conversion = leads / visits in percent.
INSERT INTO public.daily_kpis (business_id, day, visits, leads, conversion)
SELECT b, d::date, v, l, round(100.0 * l / v, 2)
FROM generate_series(1, 3) AS b,
     generate_series(current_date - 6, current_date, interval '1 day') AS d,
     LATERAL (SELECT 200 + floor(random() * 300)::int AS v) AS vv,
     LATERAL (SELECT floor(vv.v * (0.05 + random() * 0.10))::int AS l) AS ll
ON CONFLICT (business_id, day) DO NOTHING;

SELECT tidings.enable_changes('public.daily_kpis');

-- USERS.md: their business_partners table and their cache invalidation trigger, verbatim.
CREATE TABLE IF NOT EXISTS public.business_partners (
    id          serial PRIMARY KEY,
    user_id     uuid,
    business_id int,
    status      text NOT NULL DEFAULT 'pending',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION notify_cache_invalidation() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('cache_invalidation', json_build_object(
        'table', TG_TABLE_NAME, 'operation', TG_OP,
        'record_id', COALESCE(NEW.id, OLD.id))::text);
    RETURN COALESCE(NEW, OLD);
END; $$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS cache_invalidation_trigger ON public.business_partners;
CREATE TRIGGER cache_invalidation_trigger AFTER INSERT OR UPDATE OR DELETE
    ON public.business_partners FOR EACH ROW EXECUTE FUNCTION notify_cache_invalidation();

INSERT INTO public.business_partners (user_id, business_id, status)
SELECT gen_random_uuid(), b, 'active'
FROM generate_series(1, 3) AS b
WHERE NOT EXISTS (SELECT 1 FROM public.business_partners);

-- One tick of the simulated KPI job.
CREATE OR REPLACE FUNCTION public.demo_tick() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    last_day date;
    r        record;
BEGIN
    SELECT max(day) INTO last_day FROM public.daily_kpis;
    IF last_day IS NULL THEN
        RETURN;
    END IF;

    -- About every 300 ticks (90 s at 300 ms): a new day opens for every business.
    IF random() < 0.003 THEN
        last_day := last_day + 1;
        INSERT INTO public.daily_kpis (business_id, day, visits, leads, conversion)
        SELECT b, last_day, 0, 0, 0 FROM generate_series(1, 3) AS b
        ON CONFLICT (business_id, day) DO NOTHING;
    END IF;

    -- 1 to 3 random rows of the last 7 days get new visits and leads.
    FOR r IN
        SELECT business_id, day FROM public.daily_kpis
        WHERE day > last_day - 7
        ORDER BY random()
        LIMIT 1 + floor(random() * 3)::int
    LOOP
        UPDATE public.daily_kpis AS k
        SET visits     = k.visits + x.v,
            leads      = k.leads + x.l,
            conversion = round(100.0 * (k.leads + x.l) / greatest(k.visits + x.v, 1), 2),
            updated_at = now()
        FROM (SELECT 1 + floor(random() * 20)::int AS v, floor(random() * 3)::int AS l) AS x
        WHERE k.business_id = r.business_id AND k.day = r.day;
    END LOOP;

    -- Now and then: a partner status change (-> NOTIFY cache_invalidation) and a
    -- "materialized view refreshed" broadcast from SQL.
    IF random() < 0.05 THEN
        UPDATE public.business_partners
        SET status = CASE status WHEN 'active' THEN 'pending' ELSE 'active' END
        WHERE id = (SELECT id FROM public.business_partners ORDER BY random() LIMIT 1);
    END IF;
    IF random() < 0.05 THEN
        PERFORM tidings.send(jsonb_build_object('view', 'mv_daily_kpis', 'refreshed_at', now()),
                             'kpis_refreshed', 'kpis', false);
    END IF;
END; $$;
