-- Fencing of each slice's journal. The engine that recovers a slice raises its epoch first, and
-- every flush writes only where the slice's row still holds the epoch it recovered under (the
-- flush statement's guarded UPDATE, see src/persistence/journal.ts). A statement that outlived
-- its client, or a shard worker that was replaced, can then never commit beside the slice's
-- new owner. The multi-node plan of DESIGN.md (leases with epochs) rests on the same column.
ALTER TABLE seckill.item_inventory ADD COLUMN owner_epoch bigint NOT NULL DEFAULT 0;
