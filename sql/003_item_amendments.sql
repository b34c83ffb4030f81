-- Administrators change a sale's window and per-user limit while it runs (PATCH /admin/items/:id,
-- POST /admin/items/:id/end). Each change is journaled in every slice of the item as an
-- `amended` event carrying the new terms in `detail`, so replay and recovery fold it like any
-- other event; the catalog row in `sale_item` is updated with it.
ALTER TABLE seckill.journal DROP CONSTRAINT journal_kind_check;
ALTER TABLE seckill.journal ADD CONSTRAINT journal_kind_check
  CHECK (kind IN ('defined', 'restocked', 'amended', 'reserved', 'confirmed', 'cancelled', 'expired', 'purchased',
                  'transferred_out', 'transferred_in', 'transfer_settled'));
