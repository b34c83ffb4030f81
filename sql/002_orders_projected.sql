-- Orders leave the hot transaction (issue 8). The journal is the outbox: a projector reads the
-- committed `confirmed`, `purchased` and `order_cancelled` events and writes the order rows into
-- the order databases (sql/orders/), by buyer and by seller. The flush writes the journal and
-- the stock rows only.
--
-- The order rows that earlier flushes wrote here are dropped: every one of them has its event in
-- the journal, and the projector, which starts every slice at position 0 in a new order
-- database, projects them again from there.
DROP TABLE seckill.order_order;
