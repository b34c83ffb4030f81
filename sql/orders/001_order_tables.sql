-- One order database (issue 8): its share of the buyer dimension and of the seller dimension,
-- recent and history, and the projector's positions in the journals. The migration runs with
-- the database's own schema (seckill_orders_<index>) on the search path.
--
-- The tables a database holds are numbered (order_order_00 … order_order_<tables − 1>); how many
-- is configuration, so they are made at start from the templates below
-- (src/orders/orderDatabases.ts), with every column, constraint and index of their template.
-- The templates themselves hold no rows.

-- The buyer dimension: the seed service's order_order, found by the buyer's last two digits.
-- `id` is the order id; `seller_id` and `slice_id` travel along, so neither the seller's view
-- nor a cancellation needs a join.
CREATE TABLE order_order_template (
  id           bigint  PRIMARY KEY CHECK (id > 0),
  user_id      bigint  NOT NULL,
  order_id     bigint  NOT NULL CHECK (order_id = id),
  create_time  bigint  NOT NULL,
  item_id      bigint  NOT NULL,
  status       integer NOT NULL CHECK (status IN (1, 2)),  -- 1 confirmed, 2 cancelled
  modify_time  bigint  NOT NULL,
  buy_quantity bigint  NOT NULL CHECK (buy_quantity > 0),
  seller_id    bigint  NOT NULL,
  slice_id     bigint  NOT NULL
);
CREATE INDEX order_order_template_user ON order_order_template (user_id, create_time DESC, order_id DESC);

-- The seller dimension: the same order, found by the seller's last two digits.
CREATE TABLE order_seller_template (
  id           bigint  PRIMARY KEY CHECK (id > 0),
  seller_id    bigint  NOT NULL,
  order_id     bigint  NOT NULL CHECK (order_id = id),
  create_time  bigint  NOT NULL,
  item_id      bigint  NOT NULL,
  user_id      bigint  NOT NULL,
  status       integer NOT NULL CHECK (status IN (1, 2)),
  modify_time  bigint  NOT NULL,
  buy_quantity bigint  NOT NULL CHECK (buy_quantity > 0),
  slice_id     bigint  NOT NULL
);
CREATE INDEX order_seller_template_seller ON order_seller_template (seller_id, create_time DESC, order_id DESC);

-- How this database was cut when it was made. Orders are placed by arithmetic on digits, so a
-- database opened with another shape would look for orders in the wrong tables; the engine
-- refuses to start instead.
CREATE TABLE order_layout (
  singleton           boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  database_index      integer NOT NULL CHECK (database_index >= 0),
  databases           integer NOT NULL CHECK (databases > 0),
  tables_per_database integer NOT NULL CHECK (tables_per_database > 0)
);

-- Per journal (one per slice), the last sequence whose events this database has taken in. It
-- moves in the same transaction as the rows written for those events.
CREATE TABLE projection_position (
  slice_id bigint PRIMARY KEY,
  sequence bigint NOT NULL CHECK (sequence >= 0)
);

-- The high-water mark of order id ticks, per engine process number (src/orders/orderIdGenerator.ts).
-- Only order database 0 keeps it: every engine that writes into these order tables leases its
-- ticks there.
CREATE TABLE order_id_mark (
  node integer PRIMARY KEY CHECK (node BETWEEN 0 AND 99),
  mark bigint  NOT NULL CHECK (mark > 0)
);

-- Lets one statement check its own effects and roll itself back when they are wrong, as the
-- journal's flush does: the projector's statement refuses a batch whose positions another
-- projector has moved.
CREATE FUNCTION assert_true(condition boolean, message text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF condition IS NOT TRUE THEN
    RAISE EXCEPTION 'assertion failed: %', message;
  END IF;
  RETURN true;
END $$;
