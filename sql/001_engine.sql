-- The engine's tables. Everything lives in the schema `seckill`, so the engine can share a
-- server (DATABASE_URL) with other software without name clashes.
--
-- The CHECK constraints restate the decider's invariants (src/domain/slice.ts): the database
-- refuses a flush that would make a slice go negative or stop balancing, whatever the code did.

CREATE TABLE seckill.sale_item (
  id             bigint  PRIMARY KEY CHECK (id > 0),
  name           text    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  seller_id      bigint  NOT NULL CHECK (seller_id > 0),
  stock          bigint  NOT NULL CHECK (stock >= 0),  -- the stock at creation; restocks are journaled
  per_user_limit integer NOT NULL CHECK (per_user_limit > 0),
  starts_at      bigint  NOT NULL,
  ends_at        bigint  CHECK (ends_at IS NULL OR ends_at > starts_at),
  reserve_ttl_ms integer NOT NULL CHECK (reserve_ttl_ms > 0),
  slices         integer NOT NULL CHECK (slices BETWEEN 1 AND 64),
  challenge      text    NOT NULL CHECK (challenge IN ('none', 'arithmetic')),
  eligibility    jsonb,
  create_time    bigint  NOT NULL,
  -- Where the item's slices live, in slice order: their ids and inventory database numbers.
  -- Set on the primary database only; the copies on other inventory databases leave it NULL.
  slice_ids       bigint[],
  slice_databases integer[],
  CHECK (cardinality(slice_ids) = cardinality(slice_databases))
);

-- The seed service's stock table. The item's row (parent_id NULL, root_id = its own id) is a
-- header; each slice of the item is a child row (parent_id = root_id = the header's id) that
-- holds that slice's figures. `quantity` is the slice's available stock, as in the seed.
CREATE TABLE seckill.item_inventory (
  id          bigserial PRIMARY KEY,
  item_id     bigint  NOT NULL REFERENCES seckill.sale_item (id),
  quantity    bigint  NOT NULL DEFAULT 0 CHECK (quantity >= 0),
  status      integer NOT NULL DEFAULT 1,
  create_time bigint  NOT NULL,
  modify_time bigint  NOT NULL,
  parent_id   bigint  REFERENCES seckill.item_inventory (id),
  root_id     bigint,
  user_id     bigint,
  slice_index integer CHECK (slice_index >= 0),
  stock       bigint  NOT NULL DEFAULT 0 CHECK (stock >= 0),
  reserved    bigint  NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  sold        bigint  NOT NULL DEFAULT 0 CHECK (sold >= 0),
  CONSTRAINT slice_balances CHECK (quantity + reserved + sold = stock),
  CONSTRAINT header_or_slice CHECK ((parent_id IS NULL) = (slice_index IS NULL))
);
CREATE INDEX item_inventory_item_id ON seckill.item_inventory (item_id);
CREATE UNIQUE INDEX item_inventory_slice ON seckill.item_inventory (item_id, slice_index);

-- The journal: the truth. One row per event of one slice, in the slice's sequence order.
-- Everything else (stock figures, orders, snapshots) is a projection of it.
CREATE TABLE seckill.journal (
  slice_id       bigint  NOT NULL,
  sequence       bigint  NOT NULL CHECK (sequence > 0),
  kind           text    NOT NULL
                 CHECK (kind IN ('defined', 'restocked', 'reserved', 'confirmed', 'cancelled', 'expired', 'purchased',
                                 'transferred_out', 'transferred_in', 'transfer_settled')),
  user_id        bigint,
  quantity       bigint,
  reservation_id bigint,
  order_id       bigint,
  expires_at     bigint,
  at_ms          bigint  NOT NULL,
  detail         jsonb,
  PRIMARY KEY (slice_id, sequence)
);

-- The latest snapshot of each slice; recovery starts from it and replays the journal after it.
CREATE TABLE seckill.journal_snapshot (
  slice_id   bigint PRIMARY KEY,
  sequence   bigint NOT NULL,
  data       jsonb  NOT NULL,
  created_at bigint NOT NULL
);

-- The seed service's order table, projected from `confirmed` and `purchased` events in the same
-- transaction that journals them, so an acknowledged order is always readable. `seller_id`
-- serves the seller's view without a join. `id` is the order id, so the primary key is what
-- keeps order ids unique; a second unique index on `order_id` would cost every flush for nothing.
CREATE TABLE seckill.order_order (
  id           bigint  PRIMARY KEY,
  user_id      bigint  NOT NULL,
  order_id     bigint  NOT NULL CHECK (order_id = id),
  create_time  bigint  NOT NULL,
  item_id      bigint  NOT NULL,
  status       integer NOT NULL,  -- 1 confirmed, 2 cancelled
  modify_time  bigint  NOT NULL,
  buy_quantity bigint  NOT NULL CHECK (buy_quantity > 0),
  seller_id    bigint  NOT NULL,
  slice_id     bigint  NOT NULL
);
CREATE INDEX order_order_user ON seckill.order_order (user_id, create_time DESC);
CREATE INDEX order_order_seller ON seckill.order_order (seller_id, create_time DESC);

CREATE TABLE seckill.blocklist (
  user_id    bigint PRIMARY KEY,
  created_at bigint NOT NULL
);

-- Secrets the engine generates once and keeps, so that what it signed before a restart (the
-- reservation tokens) still verifies after it.
CREATE TABLE seckill.engine_secret (
  name  text  PRIMARY KEY,
  value bytea NOT NULL
);

-- Lets one statement check its own effects and roll itself back when they are wrong: the
-- journal flush is a single statement, so this is how it refuses a batch whose inventory rows
-- or order rows do not match what the batch holds.
CREATE FUNCTION seckill.assert_true(condition boolean, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF condition IS NOT TRUE THEN
    RAISE EXCEPTION 'assertion failed: %', message;
  END IF;
  RETURN true;
END $$;
