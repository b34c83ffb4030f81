-- A confirmed order cancelled by an administrator (POST /admin/orders/:orderId/cancel) is the
-- journaled `order_cancelled` event of its slice: its stock goes back on sale and its buyer's
-- limit is freed; the projector marks the order cancelled in both dimensions.
ALTER TABLE seckill.journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE seckill.journal ADD CONSTRAINT journal_kind_check
  CHECK (kind IN ('defined', 'restocked', 'amended', 'reserved', 'confirmed', 'cancelled', 'expired', 'purchased',
                  'transferred_out', 'transferred_in', 'transfer_settled', 'order_cancelled'));
