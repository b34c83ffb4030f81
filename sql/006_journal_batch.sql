-- The journal, one row per slice per flush. Until now every event was a heap row of eleven
-- columns with its own primary-key entry, and every flush sent ten text arrays that PostgreSQL
-- parsed element by element: PostgreSQL paid per event. A batch row holds the events one flush
-- wrote for one slice, packed by src/persistence/journalBatch.ts; PostgreSQL pays per batch.
--
-- Rows written before this migration stay where they are, in `journal_event`. The view
-- `journal` shows both shapes as the one event per row they have always been, for psql, the
-- tests and any reader that prefers SQL; the engine reads batch rows and unpacks them itself.

ALTER TABLE seckill.journal RENAME TO journal_event;

CREATE TABLE seckill.journal_batch (
  slice_id       bigint  NOT NULL,
  first_sequence bigint  NOT NULL CHECK (first_sequence > 0),
  last_sequence  bigint  NOT NULL CHECK (last_sequence >= first_sequence),
  events         integer NOT NULL CHECK (events > 0),
  payload        bytea   NOT NULL,
  PRIMARY KEY (slice_id, first_sequence)
);
-- The payload is dense binary that compresses poorly; compressing it would cost every flush CPU.
ALTER TABLE seckill.journal_batch ALTER COLUMN payload SET STORAGE EXTERNAL;

-- A signed 64-bit big-endian integer at a 0-based byte offset of a payload.
CREATE FUNCTION seckill.journal_int8(payload bytea, offset_bytes integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT ('x' || encode(substring(payload FROM offset_bytes + 1 FOR 8), 'hex'))::bit(64)::bigint $$;

-- The events of one batch payload, one row each, in the columns of the per-event journal. The
-- layout is documented in src/persistence/journalBatch.ts; the kind codes are its `kindCodes`.
CREATE FUNCTION seckill.journal_batch_events(payload bytea)
RETURNS TABLE (sequence bigint, kind text, user_id bigint, quantity bigint, reservation_id bigint, order_id bigint,
               expires_at bigint, at_ms bigint, detail jsonb)
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE
AS $$
DECLARE
  kinds constant text[] := ARRAY['defined', 'restocked', 'reserved', 'confirmed', 'cancelled', 'expired', 'purchased',
                                 'transferred_out', 'transferred_in', 'transfer_settled', 'amended', 'order_cancelled'];
  byte_at integer := 0;
  mask integer;
  detail_length integer;
BEGIN
  WHILE byte_at < length(payload) LOOP
    kind := kinds[get_byte(payload, byte_at) + 1];
    mask := get_byte(payload, byte_at + 1);
    sequence := seckill.journal_int8(payload, byte_at + 2);
    at_ms := seckill.journal_int8(payload, byte_at + 10);
    byte_at := byte_at + 18;
    user_id := NULL; quantity := NULL; reservation_id := NULL; order_id := NULL; expires_at := NULL; detail := NULL;
    IF mask & 1 <> 0 THEN user_id := seckill.journal_int8(payload, byte_at); byte_at := byte_at + 8; END IF;
    IF mask & 2 <> 0 THEN quantity := seckill.journal_int8(payload, byte_at); byte_at := byte_at + 8; END IF;
    IF mask & 4 <> 0 THEN reservation_id := seckill.journal_int8(payload, byte_at); byte_at := byte_at + 8; END IF;
    IF mask & 8 <> 0 THEN order_id := seckill.journal_int8(payload, byte_at); byte_at := byte_at + 8; END IF;
    IF mask & 16 <> 0 THEN expires_at := seckill.journal_int8(payload, byte_at); byte_at := byte_at + 8; END IF;
    IF mask & 32 <> 0 THEN
      detail_length := ('x' || encode(substring(payload FROM byte_at + 1 FOR 4), 'hex'))::bit(32)::integer;
      detail := convert_from(substring(payload FROM byte_at + 5 FOR detail_length), 'UTF8')::jsonb;
      byte_at := byte_at + 4 + detail_length;
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE VIEW seckill.journal AS
  SELECT slice_id, sequence, kind, user_id, quantity, reservation_id, order_id, expires_at, at_ms, detail
    FROM seckill.journal_event
  UNION ALL
  SELECT batch.slice_id, event.sequence, event.kind, event.user_id, event.quantity, event.reservation_id,
         event.order_id, event.expires_at, event.at_ms, event.detail
    FROM seckill.journal_batch AS batch
   CROSS JOIN LATERAL seckill.journal_batch_events(batch.payload) AS event;

-- The kinds of the events in a batch payload: for a trigger's WHEN, a check, or a quick look.
CREATE FUNCTION seckill.journal_batch_kinds(payload bytea) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT array_agg(event.kind) FROM seckill.journal_batch_events(payload) AS event $$;
